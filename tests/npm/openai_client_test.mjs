// Drives `quanta serve` with the official `openai` npm client: completions and chat, streamed
// and not, n=2, logprobs, models.list, typed errors (400 naming the field, 401), and a clean
// SIGTERM exit. Usage: node openai_client_test.mjs QUANTA_BINARY DEFAULT_SHARED_DIR
// (the model is $QUANTA_SHARED/models/stories260K.gguf, else under DEFAULT_SHARED_DIR).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [binary, defaultShared] = process.argv.slice(2);
if (!binary || !defaultShared) {
  console.error('usage: node openai_client_test.mjs QUANTA_BINARY DEFAULT_SHARED_DIR');
  process.exit(2);
}
const model = `${process.env.QUANTA_SHARED || defaultShared}/models/stories260K.gguf`;
if (!existsSync(model)) {
  console.error(`missing test model ${model} (set QUANTA_SHARED)`);
  process.exit(1);
}

// Starts `quanta serve` on a free port; resolves to {proc, baseURL}.
function startServer(extraArgs) {
  return new Promise((resolve, reject) => {
    const proc = spawn(binary, ['serve', '-m', model, '--port', '0', '-t', '1', ...extraArgs],
                       { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error('quanta serve did not start')), 20000);
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/listening on (http:\/\/[0-9.]+:[0-9]+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, baseURL: m[1] + '/v1' });
      }
    });
    proc.on('exit', (code) => reject(new Error(`quanta serve exited early (${code})`)));
  });
}

function stopServer(proc) {
  return new Promise((resolve) => {
    proc.removeAllListeners('exit');
    proc.on('exit', (code, signal) => resolve({ code, signal }));
    proc.kill('SIGTERM');
  });
}

async function expectApiError(promise, status, param) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `not an APIError: ${e}`);
    assert.equal(e.status, status);
    if (param !== undefined) assert.equal(e.param, param);
    return;
  }
  assert.fail(`expected HTTP ${status}`);
}

const tests = {
  async completions(client) {
    const r = await client.completions.create({
      model: 'stories260K', prompt: 'Once upon a time', max_tokens: 12, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    assert.match(r.id, /^cmpl-/);
    assert.ok(r.choices[0].text.length > 0);
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);

    const stream = await client.completions.create({
      model: 'stories260K', prompt: 'Once upon a time', max_tokens: 12, temperature: 0,
      stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    assert.equal(text, r.choices[0].text);
  },

  async chat(client) {
    const messages = [{ role: 'system', content: 'Tell a story.' },
                      { role: 'user', content: 'Once upon a time' }];
    const r = await client.chat.completions.create({
      model: 'stories260K', messages, max_tokens: 10, temperature: 0, ignore_eos: true,
      logprobs: true, top_logprobs: 2 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 10);
    assert.equal(r.choices[0].logprobs.content[0].top_logprobs.length, 2);

    const stream = await client.chat.completions.create({
      model: 'stories260K', messages, max_tokens: 10, temperature: 0, ignore_eos: true,
      stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage = null;
    let finish = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      text += choice.delta.content ?? '';
      finish = choice.finish_reason ?? finish;
    }
    assert.equal(text, r.choices[0].message.content);
    assert.equal(finish, 'length');
    assert.equal(usage.completion_tokens, 10);
  },

  async twoChoices(client) {
    const r = await client.completions.create({
      model: 'stories260K', prompt: 'Once', max_tokens: 8, n: 2, seed: 3, ignore_eos: true });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
    assert.equal(r.usage.completion_tokens, 16);
  },

  async modelsAndErrors(client) {
    const models = await client.models.list();
    assert.equal(models.data[0].id, 'stories260K');
    await expectApiError(client.completions.create({
      model: 'stories260K', prompt: 'x', top_p: 3 }), 400, 'top_p');
    await expectApiError(client.chat.completions.create({
      model: 'stories260K', messages: [{ role: 'user', content: 'x' }], max_tokens: 999999 }),
      400, 'max_tokens');
  },
};

async function main() {
  const { proc, baseURL } = await startServer(['--api-key', 'sk-npm']);
  let failed = 0;
  try {
    const client = new OpenAI({ baseURL, apiKey: 'sk-npm', maxRetries: 0 });
    for (const [name, test] of Object.entries(tests)) {
      try {
        await test(client);
        console.log(`ok   ${name}`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${name}: ${e.stack}`);
      }
    }
    try {
      const wrong = new OpenAI({ baseURL, apiKey: 'sk-wrong', maxRetries: 0 });
      await expectApiError(wrong.models.list(), 401);
      await expectApiError(wrong.completions.create({ model: 'm', prompt: 'x' }), 401);
      console.log('ok   auth');
    } catch (e) {
      failed++;
      console.log(`FAIL auth: ${e.stack}`);
    }
  } finally {
    const { code, signal } = await stopServer(proc);
    if (code !== 0) {
      failed++;
      console.log(`FAIL shutdown: exit code ${code}, signal ${signal}`);
    } else {
      console.log('ok   shutdown');
    }
  }
  if (failed) {
    console.error(`${failed} failed`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
