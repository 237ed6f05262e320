// Compile every JSON Schema in contracts/ with ajv in strict mode (as a Node.js integrator
// would), then validate each schema's own `examples`.
//   node check.mjs DIR               -> JSON report on stdout; exit 1 on any error
//   node check.mjs DIR --instances   -> reads [{"schema": file, "json": text}] on stdin and
//                                       prints [true|false, ...] (is each instance valid?)
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const dir = process.argv[2];
const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats(ajv);

const files = readdirSync(dir).filter((f) => f.endsWith(".json") && f !== "index.json").sort();
const errors = [];
const schemas = {};
for (const file of files) {
  const schema = JSON.parse(readFileSync(join(dir, file), "utf8"));
  schemas[file] = schema;
  try {
    ajv.addSchema(schema);
  } catch (err) {
    errors.push({ file, stage: "add", message: String(err.message ?? err) });
  }
}

if (process.argv.includes("--instances")) {
  const requests = JSON.parse(readFileSync(0, "utf8"));
  const results = requests.map(({ schema, json }) => {
    const validate = ajv.getSchema(schemas[schema].$id);
    return validate(JSON.parse(json));
  });
  process.stdout.write(JSON.stringify(results));
  process.exit(0);
}

let examples = 0;
for (const file of files) {
  let validate;
  try {
    validate = ajv.getSchema(schemas[file].$id);
  } catch (err) {
    errors.push({ file, stage: "compile", message: String(err.message ?? err) });
    continue;
  }
  const list = schemas[file].examples ?? [];
  if (list.length === 0) errors.push({ file, stage: "examples", message: "no examples" });
  list.forEach((example, index) => {
    examples += 1;
    if (!validate(example)) {
      errors.push({ file, stage: `example ${index}`, message: ajv.errorsText(validate.errors) });
    }
  });
}
process.stdout.write(JSON.stringify({ schemas: files.length, examples, errors }, null, 2) + "\n");
process.exit(errors.length ? 1 : 0);
