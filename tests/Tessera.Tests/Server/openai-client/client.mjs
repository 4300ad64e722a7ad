// Drives a running `tessera serve` with the official openai client: completions and chat, whole and streamed.
// Usage: node client.mjs BASE_URL CLIENT_DIR BANNED_TOKEN   (CLIENT_DIR holds node_modules/openai, see tests/fetch-openai-client.sh)
// Prints one JSON object the C# test (OpenAiClientTests) checks.
import { createRequire } from 'node:module';
import path from 'node:path';

const [baseURL, clientDir] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(clientDir), 'package.json'));
const m = require('openai');
const OpenAI = m.OpenAI ?? m.default ?? m;
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });

const completion = await client.completions.create({
  model: 'tinystories', prompt: 'Once upon a time', max_tokens: 20, temperature: 0, logprobs: 2,
});

let streamedText = '', streamedFinish = null, streamedUsage = null;
const stream = await client.completions.create({
  model: 'tinystories', prompt: 'Once upon a time', max_tokens: 20, temperature: 0, stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  for (const c of chunk.choices) { streamedText += c.text; if (c.finish_reason) streamedFinish = c.finish_reason; }
  if (chunk.usage) streamedUsage = chunk.usage;
}

const messages = [{ role: 'user', content: 'Tell me a story about a cat.' }];
const chat = await client.chat.completions.create({ model: 'tinystories', messages, max_tokens: 20, temperature: 0, seed: 7 });

let chatText = '', chatFinish = null, chatRole = null;
const chatStream = await client.chat.completions.create({ model: 'tinystories', messages, max_tokens: 20, temperature: 0, stream: true });
for await (const chunk of chatStream) {
  for (const c of chunk.choices) {
    if (c.delta.role) chatRole = c.delta.role;
    chatText += c.delta.content ?? '';
    if (c.finish_reason) chatFinish = c.finish_reason;
  }
}

let error = null;
try {
  await client.completions.create({ model: 'tinystories', prompt: 'x', temperature: -1 });
} catch (e) {
  error = { status: e.status, type: e.type ?? e.error?.type ?? null, param: e.param ?? e.error?.param ?? null };
}

const models = await client.models.list();

// n: 4 choices, the prompt computed once: the server's counter of prompt positions run grows by one prompt.
const metricsUrl = new URL('/metrics', baseURL).toString();
const metric = async (name) => {
  const text = await (await fetch(metricsUrl)).text();
  const m = text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : null;
};
const storyMessages = [{ role: 'user', content: 'Write about a red ball and a dog.' }];
const computedBefore = await metric('tessera_prompt_tokens_computed_total');
const four = await client.chat.completions.create({ model: 'tinystories', messages: storyMessages, max_tokens: 12, temperature: 1, seed: 5, n: 4 });
const computedAfter = await metric('tessera_prompt_tokens_computed_total');

// The same four, streamed: deltas accumulated per choice index, as the SDK's users do.
const streamedChoices = [];
const fourStream = await client.chat.completions.create({ model: 'tinystories', messages: storyMessages, max_tokens: 12, temperature: 1, seed: 5, n: 4, stream: true });
for await (const chunk of fourStream) {
  for (const c of chunk.choices) {
    streamedChoices[c.index] ??= { text: '', finish: null };
    streamedChoices[c.index].text += c.delta.content ?? '';
    if (c.finish_reason) streamedChoices[c.index].finish = c.finish_reason;
  }
}

// logit_bias -100 bans a token: the test passes the token the unbiased greedy completion starts with.
const unbiased = await client.completions.create({ model: 'tinystories', prompt: 'Once upon a time', max_tokens: 8, temperature: 0, logprobs: 0 });
const firstToken = process.argv[4];
const biased = await client.completions.create({
  model: 'tinystories', prompt: 'Once upon a time', max_tokens: 8, temperature: 0, logit_bias: { [firstToken]: -100 },
});

// response_format json_schema: 50 seeded samples at temperature 1, each content JSON.parse'd and checked against
// the schema. TinyStories' vocabulary has no '{' or '[', so the schema is one it can write: a JSON string.
const schema = { type: 'string', minLength: 3, maxLength: 40 };
const valid = (v) => typeof v === 'string' && [...v].length >= 3 && [...v].length <= 40;
const constrained = { samples: 0, parsed: 0, valid: 0, finishes: {}, examples: [] };
for (let seed = 1; seed <= 50; seed++) {
  const r = await client.chat.completions.create({
    model: 'tinystories', messages: storyMessages, max_tokens: 60, temperature: 1, seed,
    response_format: { type: 'json_schema', json_schema: { name: 'line', schema, strict: true } },
  });
  constrained.samples++;
  const content = r.choices[0].message.content;
  constrained.finishes[r.choices[0].finish_reason] = (constrained.finishes[r.choices[0].finish_reason] ?? 0) + 1;
  if (constrained.examples.length < 3) constrained.examples.push(content);
  try { const v = JSON.parse(content); constrained.parsed++; if (valid(v)) constrained.valid++; } catch { }
}
const refused = async (body) => {
  try { await client.chat.completions.create({ model: 'tinystories', messages: storyMessages, max_tokens: 4, ...body }); return null; }
  catch (e) { return { status: e.status, param: e.param ?? e.error?.param ?? null, message: e.message }; }
};
constrained.jsonObject = await refused({ response_format: { type: 'json_object' } });
constrained.badSchema = await refused({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', format: 'email' } } } });

console.log(JSON.stringify({
  completion: {
    text: completion.choices[0].text, finish: completion.choices[0].finish_reason, usage: completion.usage,
    model: completion.model, tokenLogprobs: completion.choices[0].logprobs?.token_logprobs ?? null,
  },
  completionStream: { text: streamedText, finish: streamedFinish, usage: streamedUsage },
  chat: { text: chat.choices[0].message.content, role: chat.choices[0].message.role, finish: chat.choices[0].finish_reason, usage: chat.usage },
  chatStream: { text: chatText, role: chatRole, finish: chatFinish },
  error,
  models: models.data.map(d => d.id),
  choices: {
    texts: four.choices.map(c => c.message.content), indexes: four.choices.map(c => c.index),
    finishes: four.choices.map(c => c.finish_reason), usage: four.usage,
    computed: computedAfter - computedBefore, streamed: streamedChoices,
  },
  logitBias: { unbiased: unbiased.choices[0].text, biased: biased.choices[0].text },
  constrained,
}));
