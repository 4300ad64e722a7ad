// Drives a running `tessera serve` with the official openai client: completions and chat, whole and streamed.
// Usage: node client.mjs BASE_URL CLIENT_DIR   (CLIENT_DIR holds node_modules/openai, see tests/fetch-openai-client.sh)
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
}));
