// Buttons that act on the queue. A destructive one asks for a second click instead of a dialog (which a
// browser may suppress); each reports what it did, or the API's error, through `notify`.

import { h } from "./dom.js";

const ARMED_MS = 4000;

/**
 * A button that runs `action` (async, returning the message to show) and then refreshes the page.
 * With `confirm`, the first click only arms it: its label becomes `confirm` until a second click or a few
 * seconds pass.
 */
export function actionButton(label, action, ctx, { confirm, testid, danger } = {}) {
  let armed = false;
  let disarm = 0;
  const button = h(
    "button",
    { type: "button", class: danger ? "danger" : undefined, "data-testid": testid },
    label,
  );
  button.addEventListener("click", async () => {
    if (confirm && !armed) {
      armed = true;
      button.textContent = confirm;
      button.classList.add("armed");
      disarm = setTimeout(() => {
        armed = false;
        button.textContent = label;
        button.classList.remove("armed");
      }, ARMED_MS);
      return;
    }
    clearTimeout(disarm);
    armed = false;
    button.textContent = label;
    button.classList.remove("armed");
    button.disabled = true;
    try {
      const message = await action();
      if (message) ctx.notify(message);
    } catch (error) {
      ctx.notify(error.message, "error");
    } finally {
      button.disabled = false;
    }
    await ctx.refresh();
  });
  return button;
}
