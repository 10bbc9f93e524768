/**
 * Describes a handler's payload from its valibot schema, for `prismq handlers`.
 *
 * @module
 */
import type { PayloadSchema } from "../../mod.ts";

export interface PayloadField {
  name: string;
  type: string;
  required: boolean;
}

interface SchemaNode {
  type: string;
  kind?: string;
  wrapped?: SchemaNode;
  item?: SchemaNode;
  options?: unknown[];
  entries?: Record<string, SchemaNode>;
  pipe?: SchemaNode[];
}

/** The object schema itself, or the one inside a pipe (`v.pipe(v.custom(...), v.strictObject(...))`). */
function objectNode(node: SchemaNode): SchemaNode | undefined {
  if (node.entries) return node;
  for (const step of node.pipe ?? []) {
    if (step.kind === "schema" && step !== node) {
      const found = objectNode(step);
      if (found) return found;
    }
  }
  return undefined;
}

const OPTIONAL = new Set(["optional", "nullish", "exact_optional", "undefinedable"]);
const WRAPPERS = new Set([...OPTIONAL, "nullable", "non_nullable", "non_optional", "non_nullish"]);

/** The top-level fields of an object schema; an empty list for any other schema. */
export function payloadFields(schema: PayloadSchema): PayloadField[] {
  const node = objectNode(schema as unknown as SchemaNode);
  if (!node?.entries) return [];
  return Object.entries(node.entries).map(([name, entry]) => ({
    name,
    type: describe(entry),
    required: !OPTIONAL.has(entry.type),
  }));
}

function describe(node: SchemaNode): string {
  if (WRAPPERS.has(node.type) && node.wrapped) return describe(node.wrapped);
  const checks = (node.pipe ?? []).filter((step) => step.kind === "validation" && step.type !== node.type);
  const refined = checks.find((step) =>
    ["email", "url", "integer", "uuid", "iso_timestamp"].includes(step.type)
  );
  switch (node.type) {
    case "array":
      return `${node.item ? describe(node.item) : "unknown"}[]`;
    case "picklist":
      return (node.options ?? []).map((option) => JSON.stringify(option)).join(" | ");
    case "union":
      return ((node.options ?? []) as SchemaNode[]).map(describe).join(" | ");
    case "record":
      return "object";
    default:
      return refined ? `${node.type} (${refined.type})` : node.type;
  }
}
