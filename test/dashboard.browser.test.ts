// The dashboard in a real browser (Debian's Chromium driven by playwright-core), against the
// real server: the seed page's steps, word for word, then the API call that proves them.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { after, afterEach, before, describe, test } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { ensureBuilt } from './support/build.ts';
import { DashboardClient } from './support/dashboard-client.ts';
import { type Harness, startHarness } from './support/harness.ts';

const CHROMIUM = process.env.BIZORA_CHROMIUM ?? '/usr/bin/chromium';
const OWNER = 'owner@example.com';
const OUTPUT = new URL('../test-output/', import.meta.url).pathname;
const haveChromium = existsSync(CHROMIUM);
/** Pages are saved as pictures only when asked (BIZORA_SCREENSHOTS=1): they take a third of a second each. */
const screenshot = async (page: Page, name: string) => {
  if (process.env.BIZORA_SCREENSHOTS === '1') await page.screenshot({ path: `${OUTPUT}${name}` });
};
if (!haveChromium) {
  if (process.env.CI === 'true')
    throw new Error(`Chromium is missing at ${CHROMIUM}; under CI=true the browser suite must run (.ci/run installs it).`);
  console.log(`# Chromium not found at ${CHROMIUM} (apt-get install chromium): skipping the browser suite.`);
}

describe('the developer dashboard in a browser', { skip: !haveChromium }, () => {
  let h: Harness;
  let browser: Browser;
  let owner: DashboardClient;
  // Everything the browser refused under the Content-Security-Policy, on the pages of each test.
  const cspViolations: string[] = [];
  afterEach(() => {
    assert.deepEqual(cspViolations.splice(0), [], 'no page of this test broke the Content-Security-Policy');
  });
  before(async () => {
    ensureBuilt();
    h = await startHarness('sqlite', { env: { BIZORA_SIGNUP_CREDIT_CENTS: '500' } });
    // The administrator: the first account on this database, before any test runs.
    owner = new DashboardClient(h.url);
    assert.equal((await owner.signUp(OWNER, 'a long enough password')).role, 'admin');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
    });
    mkdirSync(OUTPUT, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await h?.close();
  });

  const chat = (key: string) =>
    fetch(`${h.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'bizora', messages: [{ role: 'user', content: 'Hello from the browser test' }] }),
    });

  /** A page that reports CSP violations (the event, and the console's own lines about the policy). */
  async function newPage(context: BrowserContext): Promise<Page> {
    const page = await context.newPage();
    // Runs in the page (a string: this file is compiled without the DOM's types).
    await page.addInitScript({
      content:
        "document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));",
    });
    page.on('console', (msg) => {
      if (/CSP violation|Content Security Policy|Refused to (load|execute|apply|connect|frame)/i.test(msg.text()))
        cspViolations.push(msg.text());
    });
    return page;
  }

  async function signUp(page: Page, email: string): Promise<void> {
    await page.goto(h.url);
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill('a long enough password');
    await page.getByRole('button', { name: 'Sign up' }).click();
    await page.getByRole('heading', { name: 'API Keys' }).waitFor();
  }

  test('sign up, create a key named "ci", use it, revoke it, and see it refused', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: h.url });
    const page = await newPage(context);
    await signUp(page, 'first@example.com');

    // Developers -> API Keys, with exactly those labels.
    const nav = page.getByRole('navigation', { name: 'Main' });
    await nav.getByText('Developers', { exact: true }).waitFor();
    await nav.getByRole('link', { name: 'API Keys' }).click();

    await page.getByRole('button', { name: 'Create New Key' }).click();
    const create = page.getByRole('dialog', { name: 'Create New Key' });
    await create.getByRole('button', { name: 'Create key' }).click();
    assert.equal(
      await create.getByLabel('Name').evaluate((el) => (el as unknown as { validity: { valueMissing: boolean } }).validity.valueMissing),
      true,
      'a name is required',
    );
    await create.getByLabel('Name').fill('ci');
    await create.getByRole('button', { name: 'Create key' }).click();

    const shown = page.getByRole('dialog', { name: 'Your new API key' });
    await shown.getByText('will not be shown again').waitFor();
    const key = await shown.getByTestId('new-key').inputValue();
    assert.match(key, /^sk_live_[0-9A-Za-z]{39}$/);
    await shown.getByRole('button', { name: 'Copy' }).click();
    await shown.getByRole('button', { name: 'Copied' }).waitFor();
    assert.equal(await page.evaluate('navigator.clipboard.readText()'), key);
    await shown.getByRole('button', { name: 'Done' }).click();

    const row = page.locator('tbody tr', { hasText: 'ci' });
    await row.getByText('Active').waitFor();
    assert.equal(await row.locator('code').innerText(), `${key.slice(0, 12)}…${key.slice(-4)}`);
    assert.equal(await page.getByText(key).count(), 0, 'the full key is gone once the dialog closes');

    assert.equal((await chat(key)).status, 200);
    await page.reload();
    await row.getByText('Active').waitFor();
    assert.notEqual(await row.locator('td').nth(4).innerText(), 'Never', 'last used is shown');
    await screenshot(page, 'api-keys.png');

    await row.getByRole('button', { name: 'Revoke Key' }).click();
    const confirm = page.getByRole('dialog');
    await confirm.getByText('cannot be undone').waitFor();
    await confirm.getByRole('button', { name: 'Revoke Key' }).click();
    await row.getByText('Revoked').waitFor();
    assert.equal(await row.getByRole('button', { name: 'Revoke Key' }).count(), 0);

    const refused = await chat(key);
    assert.equal(refused.status, 401);
    assert.equal(await refused.text(), '{"error":{"message":"Invalid API key","type":"authentication_error","code":null}}');
    await context.close();
  });

  test('billing, usage and getting started show this account and this server', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await newPage(context);
    await signUp(page, 'second@example.com');
    await page.getByRole('button', { name: 'Create New Key' }).click();
    await page.getByLabel('Name').fill('usage-test');
    await page.getByRole('button', { name: 'Create key' }).click();
    const key = await page.getByTestId('new-key').inputValue();
    await page.getByRole('button', { name: 'Done' }).click();
    const res = await chat(key);
    const requestId = res.headers.get('x-request-id') as string;

    await page.getByRole('link', { name: 'Billing' }).click();
    await page.getByRole('heading', { name: 'Billing' }).waitFor();
    await page.getByText('Sign-up credit').waitFor();
    await page.getByText(`Request ${requestId}`).waitFor();
    assert.match(await page.getByTestId('balance').innerText(), /^\$4\.99/);
    await screenshot(page, 'billing.png');

    await page.getByRole('link', { name: 'Usage' }).click();
    await page.locator('.recharts-surface').first().waitFor();
    await page.locator('td', { hasText: 'usage-test' }).waitFor();
    await screenshot(page, 'usage.png');
    const link = page.getByRole('link', { name: `${requestId.slice(0, 14)}…` });
    await link.click();
    await page.getByText(`GET /v1/generation?id=${requestId}`).waitFor();
    await screenshot(page, 'usage-record.png');

    await page.getByRole('link', { name: 'Getting started' }).click();
    assert.equal(await page.getByTestId('base-url').innerText(), `${h.url}/v1`);
    await page.getByText('BIZORA_API_KEY=sk_live_YOUR_API_KEY').waitFor();
    await page.getByText('Python (OpenAI SDK)').waitFor();
    // A Responses API example beside the chat one.
    await page.getByText('Python, the Responses API').waitFor();
    await page.getByText('client.responses.create(').waitFor();
    await context.close();
  });

  test('a key created with limits shows them; Limits changes them, Rotate shows the new secret once, an unused key stands out', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await newPage(context);
    await signUp(page, 'limits@example.com');
    await page.getByRole('button', { name: 'Create New Key' }).click();
    const create = page.getByRole('dialog', { name: 'Create New Key' });
    await create.getByLabel('Name').fill('capped');
    await create.getByText('Limits (optional)').click();
    await create.getByLabel('Requests per minute').fill('2');
    await create.getByLabel('Spend limit (cents)').fill('150');
    await create.getByLabel('Spend period').selectOption('day');
    await create.getByRole('button', { name: 'Create key' }).click();
    const shown = page.getByRole('dialog', { name: 'Your new API key' });
    const key = await shown.getByTestId('new-key').inputValue();
    await shown.getByRole('button', { name: 'Done' }).click();
    const row = page.locator('tbody tr', { hasText: 'capped' });
    await row.getByText('2/min · $1.50/day').waitFor();
    // The server holds the key to them: a third request in the minute is refused.
    assert.deepEqual([(await chat(key)).status, (await chat(key)).status, (await chat(key)).status], [200, 200, 429]);

    await row.getByRole('button', { name: 'Limits' }).click();
    const edit = page.getByRole('dialog', { name: 'Limits of “capped”' });
    assert.equal(await edit.getByLabel('Requests per minute').inputValue(), '2');
    await edit.getByLabel('Requests per minute').fill('');
    await edit.getByLabel('Models').fill('bizora');
    await edit.getByRole('button', { name: 'Save limits' }).click();
    await row.getByText('$1.50/day · bizora').waitFor();
    assert.equal((await chat(key)).status, 200, 'the cleared limit is gone');

    await row.getByRole('button', { name: 'Rotate' }).click();
    const rotate = page.getByRole('dialog', { name: 'Rotate “capped”?' });
    await rotate.getByRole('button', { name: 'Rotate key' }).click();
    const rotated = page.getByRole('dialog', { name: 'Your new API key' });
    const fresh = await rotated.getByTestId('new-key').inputValue();
    await rotated.getByText(/The old key keeps working until/).waitFor();
    await rotated.getByRole('button', { name: 'Done' }).click();
    assert.notEqual(fresh, key);
    assert.deepEqual([(await chat(fresh)).status, (await chat(key)).status], [200, 200]);
    await row.getByText('Old secret still works').waitFor();

    // A key nobody has used for 30 days is marked, so that it can be revoked.
    const id = await row.getAttribute('data-key-id');
    const account = await h.deps.db
      .selectFrom('api_keys')
      .select('account_id')
      .where('id', '=', id as string)
      .executeTakeFirstOrThrow();
    const old = await h.deps.db
      .insertInto('api_keys')
      .values({
        ...(await h.deps.db
          .selectFrom('api_keys')
          .selectAll()
          .where('id', '=', id as string)
          .executeTakeFirstOrThrow()),
        id: 'key_forgotten1',
        name: 'forgotten',
        hash: 'f'.repeat(64),
        previous_hash: null,
        previous_valid_until: null,
        account_id: account.account_id,
        created_at: Date.now() - 40 * 86_400_000,
        last_used_at: Date.now() - 35 * 86_400_000,
      })
      .execute();
    assert.ok(old);
    await page.reload();
    await page.locator('tbody tr', { hasText: 'forgotten' }).getByText('Unused for 30 days').waitFor();
    await screenshot(page, 'api-keys-limits.png');
    await context.close();
  });

  test("a second user cannot see the first user's keys", async () => {
    const context = await browser.newContext();
    const page = await newPage(context);
    assert.equal((await owner.call('POST', '/keys', { name: "the owner's" })).status, 201);
    await signUp(page, 'third@example.com');
    await page.getByText('No keys yet').waitFor();
    assert.equal(await page.locator('tbody tr').count(), 0);
    await context.close();
  });

  test('an administrator creates an account, and a double click on Grant grants once', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await newPage(context);
    await page.goto(h.url);
    await page.getByLabel('Email').fill(OWNER);
    await page.getByLabel('Password').fill('a long enough password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'API Keys' }).waitFor();

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Accounts' }).click();
    await page.getByRole('heading', { name: 'Accounts' }).waitFor();
    await page.getByLabel('Email').fill('hire@example.com');
    await page.getByRole('button', { name: 'Create account' }).click();
    const shown = page.getByRole('dialog', { name: 'Account created' });
    await shown.getByText('will not be shown again').waitFor();
    const password = await shown.getByTestId('new-password').inputValue();
    assert.match(password, /^[0-9A-Za-z]{20}$/);
    await shown.getByRole('button', { name: 'Done' }).click();
    await page.locator('td', { hasText: 'hire@example.com' }).waitFor();
    await screenshot(page, 'accounts.png');

    await page.getByRole('link', { name: 'Billing' }).click();
    await page.getByRole('heading', { name: 'Grant credit' }).waitFor();
    await page.getByLabel('Account').selectOption('hire@example.com');
    await page.getByLabel('Amount (USD)').fill('2.50');
    await page.getByRole('button', { name: 'Grant' }).dblclick();
    await page.getByText('Granted $2.50 to hire@example.com').waitFor();
    const hire = await h.deps.db
      .selectFrom('accounts')
      .select(['id', 'balance_micros'])
      .where('email', '=', 'hire@example.com')
      .executeTakeFirstOrThrow();
    const grants = await h.deps.db.selectFrom('ledger_entries').select('amount_micros').where('account_id', '=', hire.id).execute();
    assert.deepEqual(
      grants.map((g) => g.amount_micros),
      [2_500_000],
      'one grant',
    );
    assert.equal(hire.balance_micros, 2_500_000);
    await context.close();

    // The new account signs in with the password it was given.
    const theirs = await browser.newContext();
    const own = await newPage(theirs);
    await own.goto(h.url);
    await own.getByLabel('Email').fill('hire@example.com');
    await own.getByLabel('Password').fill(password);
    await own.getByRole('button', { name: 'Sign in' }).click();
    await own.getByText('$2.50 available').waitFor();
    await theirs.close();
  });

  test('signing out and back in, and a wrong password gets the generic message', async () => {
    const context = await browser.newContext();
    const page = await newPage(context);
    await signUp(page, 'fourth@example.com');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Email').fill('fourth@example.com');
    await page.getByLabel('Password').fill('wrong password!');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').getByText('The email or password is incorrect.').waitFor();
    await page.getByLabel('Password').fill('a long enough password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'API Keys' }).waitFor();
    await context.close();
  });

  /** Creates a key through Create New Key, on the API Keys page; returns the key and its id. */
  async function createKeyInPage(page: Page, name: string): Promise<{ key: string; id: string }> {
    await page.getByRole('button', { name: 'Create New Key' }).click();
    const create = page.getByRole('dialog', { name: 'Create New Key' });
    await create.getByLabel('Name').fill(name);
    await create.getByRole('button', { name: 'Create key' }).click();
    const shown = page.getByRole('dialog', { name: 'Your new API key' });
    const key = await shown.getByTestId('new-key').inputValue();
    await shown.getByRole('button', { name: 'Done' }).click();
    const id = await page.locator('tbody tr', { hasText: name }).getAttribute('data-key-id');
    assert.ok(id);
    return { key, id };
  }

  test('a failing load shows an error and a retry, never an empty list', async () => {
    const context = await browser.newContext();
    const page = await newPage(context);
    await signUp(page, 'fifth@example.com');
    await page.getByText('No keys yet').waitFor();
    const nav = page.getByRole('navigation', { name: 'Main' });
    await nav.getByRole('link', { name: 'Billing' }).click();
    await page.getByRole('heading', { name: 'Billing' }).waitFor();

    // The server answers /keys with an error: its message is shown, not "No keys yet".
    await page.route('**/dashboard/api/keys', (route) =>
      route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({ error: { message: 'The database is not answering.', type: 'server_error', code: 'service_unavailable' } }),
      }),
    );
    await nav.getByRole('link', { name: 'API Keys' }).click();
    await page.getByRole('alert').getByText('Could not load your keys: The database is not answering.').waitFor();
    assert.equal(await page.getByText('No keys yet').count(), 0);
    assert.equal(await page.locator('table').count(), 0);

    // The connection fails: said so too, and Try again loads the keys once the server answers.
    await page.unroute('**/dashboard/api/keys');
    await page.route('**/dashboard/api/keys', (route) => route.abort('connectionfailed'));
    await page.getByRole('button', { name: 'Try again' }).click();
    await page
      .getByRole('alert')
      .getByText(/Could not load your keys: The server could not be reached/)
      .waitFor();
    await page.unroute('**/dashboard/api/keys');
    await page.getByRole('button', { name: 'Try again' }).click();
    await page.getByText('No keys yet').waitFor();
    assert.equal(await page.getByRole('alert').count(), 0);
    await context.close();
  });

  test('a page whose code cannot be loaded says so, and the rest of the dashboard stays', async () => {
    const context = await browser.newContext();
    const page = await newPage(context);
    await signUp(page, 'seventh@example.com');
    // The usage page's own chunk is gone (the server was updated) or the connection dropped.
    await page.route('**/assets/UsagePage-*.js', (route) => route.abort('connectionfailed'));
    const nav = page.getByRole('navigation', { name: 'Main' });
    await nav.getByRole('link', { name: 'Usage' }).click();
    await page
      .getByRole('alert')
      .getByText(/This page could not be loaded/)
      .waitFor();
    await page.getByRole('button', { name: 'Reload' }).waitFor();
    await nav.getByRole('link', { name: 'Billing' }).click();
    await page.getByRole('heading', { name: 'Billing' }).waitFor();
    await context.close();
  });

  test('a slow answer to an older usage filter never replaces the newer one', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await newPage(context);
    await signUp(page, 'sixth@example.com');
    const alpha = await createKeyInPage(page, 'alpha');
    const beta = await createKeyInPage(page, 'beta');
    assert.equal((await chat(alpha.key)).status, 200);
    assert.equal((await chat(beta.key)).status, 200);

    // The server's real answer for the alpha filter is held back until the beta one is shown.
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    await page.route(`**/dashboard/api/usage?*key_id=${alpha.id}*`, async (route) => {
      const response = await route.fetch();
      await held;
      await route.fulfill({ response });
    });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Usage' }).click();
    const rows = page.locator('tbody tr');
    await rows.filter({ hasText: 'alpha' }).waitFor();
    await rows.filter({ hasText: 'beta' }).waitFor();

    const select = page.getByLabel('Key');
    await select.selectOption(alpha.id);
    await select.selectOption(beta.id);
    // Beta's answer shows beta's request alone (the page's CSP rules out waitForFunction's eval).
    await rows.nth(1).waitFor({ state: 'detached' });
    assert.equal(await rows.filter({ hasText: 'beta' }).count(), 1);

    const staleAnswer = page.waitForResponse((r) => r.url().includes(`key_id=${alpha.id}`));
    release();
    await (await staleAnswer).finished();
    // Time for the page to take the answer in (it would render alpha's row if it applied it).
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 100)));
    assert.equal(await rows.count(), 1);
    assert.equal(await rows.filter({ hasText: 'beta' }).count(), 1);
    assert.equal(await select.inputValue(), beta.id);
    await context.close();
  });
});
