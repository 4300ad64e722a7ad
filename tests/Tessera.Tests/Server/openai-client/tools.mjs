// Drives `tessera serve` on a model whose vocabulary can write JSON objects (ToolCallTests: a tiny random model with
// the Llama 2 vocabulary) with the official openai client: a required tool call, the same call through the SDK's own
// stream accumulator, and 50 json_schema objects at temperature 1, each JSON.parse'd and validated.
// Usage: node tools.mjs BASE_URL CLIENT_DIR. Prints one JSON object.
import { createRequire } from 'node:module';
import path from 'node:path';

const [baseURL, clientDir] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(clientDir), 'package.json'));
const m = require('openai');
const OpenAI = m.OpenAI ?? m.default ?? m;
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });

const tools = [{
  type: 'function',
  function: {
    name: 'get_weather', description: 'the weather in a city',
    parameters: {
      type: 'object', additionalProperties: false, required: ['city', 'unit'],
      properties: { city: { type: 'string', maxLength: 16 }, unit: { enum: ['c', 'f'] } },
    },
  },
}];
const ask = { model: 'spm-tiny', messages: [{ role: 'user', content: 'Weather in Paris?' }], max_tokens: 120, temperature: 1, seed: 3, tools, tool_choice: 'required' };

const whole = await client.chat.completions.create(ask);
const call = whole.choices[0].message.tool_calls?.[0] ?? null;
let parsed = null;
try { parsed = JSON.parse(call.function.arguments); } catch { }

// The SDK's accumulator over the streamed deltas.
const stream = client.beta.chat.completions.stream({ ...ask, stream: true });
const final = await stream.finalChatCompletion();
const streamed = final.choices[0].message.tool_calls?.[0] ?? null;

const schema = {
  type: 'object', additionalProperties: false, required: ['name', 'age', 'pets'],
  properties: {
    name: { type: 'string', maxLength: 12 }, age: { type: 'integer', minimum: 0, maximum: 120 },
    pets: { type: 'array', items: { enum: ['cat', 'dog', 'bird'] }, maxItems: 3 },
  },
};
const valid = (v) => v && typeof v === 'object' && !Array.isArray(v)
  && Object.keys(v).every(k => ['name', 'age', 'pets'].includes(k))
  && typeof v.name === 'string' && [...v.name].length <= 12
  && Number.isInteger(v.age) && v.age >= 0 && v.age <= 120
  && Array.isArray(v.pets) && v.pets.length <= 3 && v.pets.every(p => ['cat', 'dog', 'bird'].includes(p));
const objects = { samples: 0, parsed: 0, valid: 0, examples: [] };
for (let seed = 1; seed <= 50; seed++) {
  const r = await client.chat.completions.create({
    model: 'spm-tiny', messages: [{ role: 'user', content: 'Describe a person.' }], max_tokens: 160, temperature: 1, seed,
    response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } },
  });
  objects.samples++;
  const content = r.choices[0].message.content;
  if (objects.examples.length < 2) objects.examples.push(content);
  try { const v = JSON.parse(content); objects.parsed++; if (valid(v)) objects.valid++; } catch { }
}

console.log(JSON.stringify({
  call: call && { id: call.id, type: call.type, name: call.function.name, arguments: call.function.arguments, finish: whole.choices[0].finish_reason },
  parsed, streamed: streamed && { id: streamed.id, name: streamed.function.name, arguments: streamed.function.arguments, finish: final.choices[0].finish_reason },
  objects,
}));
