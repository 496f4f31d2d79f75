#!/usr/bin/env node
// Real-browser accessibility audit of the civica dashboard.
//
// Usage: node tests/browser/audit.js http://127.0.0.1:PORT/
//
// Launches Debian's Chromium headless (never a browser downloaded by npm), loads every page
// in PAGES at every viewport in VIEWPORTS, saves a full-page screenshot of each, runs axe-core
// with the WCAG 2.1 A/AA rules, and fails listing every violation, every console error, failed
// request or HTTP error. It also checks that the pages need no JavaScript: the served HTML has
// no <script>, and with JavaScript disabled the content is there and the year form works.
//
// Environment: CHROMIUM (default /usr/bin/chromium), SCREENSHOT_DIR (default
// tests/browser/screenshots, git-ignored).
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const puppeteer = require('puppeteer-core');
const axe = require('axe-core');

// Every page type the server renders as HTML. Add new pages here.
const PAGES = [
  { name: 'home', path: '/' },
  { name: 'home-2017', path: '/?year=2017' },
  { name: 'home-2015', path: '/?year=2015' },
];

// Desktop, and a narrow phone screen (WCAG 1.4.10 reflow is judged at 320 CSS px).
const VIEWPORTS = [
  { name: 'desktop', width: 1280, height: 900 },
  { name: 'mobile', width: 320, height: 640 },
];

const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

// The flags of shared/CONVENTIONS.md, plus --disable-sync and --disable-quic.
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
  '--hide-scrollbars',
  '--mute-audio',
];

const NAV_TIMEOUT_MS = 30_000;
const OVERALL_TIMEOUT_MS = 240_000;

function fail(message) {
  console.error(`browser audit: ${message}`);
  process.exit(2);
}

async function main() {
  const base = process.argv[2];
  if (!base || !/^https?:\/\//.test(base)) fail('usage: node audit.js http://127.0.0.1:PORT/');
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) fail(`no Chromium at ${executablePath}`);
  const shotDir = path.resolve(
    process.env.SCREENSHOT_DIR || path.join(__dirname, 'screenshots'),
  );
  fs.rmSync(shotDir, { recursive: true, force: true });
  fs.mkdirSync(shotDir, { recursive: true });

  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'civica-chromium-'));
  const browser = await puppeteer.launch({
    executablePath,
    ignoreDefaultArgs: true,
    args: [...CHROMIUM_FLAGS, `--user-data-dir=${userDataDir}`, 'about:blank'],
    pipe: true,
    timeout: NAV_TIMEOUT_MS,
    protocolTimeout: NAV_TIMEOUT_MS * 2,
  });
  const results = [];
  try {
    console.log(`browser audit: ${await browser.version()} at ${base}`);
    for (const pageSpec of PAGES) {
      const url = new URL(pageSpec.path, base).href;
      results.push(await checkServedHtml(pageSpec, url));
      for (const viewport of VIEWPORTS) {
        results.push(await auditPage(browser, pageSpec, url, viewport, shotDir));
      }
      results.push(await checkWithoutJavaScript(browser, pageSpec, url));
    }
  } finally {
    await browser.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }

  let passed = 0;
  let failed = 0;
  for (const r of results) {
    if (r.problems.length === 0) {
      passed += 1;
      console.log(`ok   ${r.name}${r.note ? ` (${r.note})` : ''}`);
    } else {
      failed += 1;
      console.log(`FAIL ${r.name}`);
      for (const p of r.problems) console.log(indent(p, '       '));
    }
  }
  console.log(`browser audit: screenshots in ${shotDir}`);
  console.log(`browser audit: ${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

function indent(text, prefix) {
  return text
    .split('\n')
    .map((line) => prefix + line)
    .join('\n');
}

// The HTML as served: 200, text/html, and no script at all (the pages must work without JS).
async function checkServedHtml(pageSpec, url) {
  const problems = [];
  const response = await fetch(url, { signal: AbortSignal.timeout(NAV_TIMEOUT_MS) });
  const body = await response.text();
  if (response.status !== 200) problems.push(`HTTP ${response.status} for ${url}`);
  const type = response.headers.get('content-type') || '';
  if (!type.startsWith('text/html')) problems.push(`content-type is "${type}", not text/html`);
  const scripts = body.match(/<script\b[^>]*>/gi) || [];
  for (const tag of scripts) problems.push(`has a script tag: ${tag}`);
  const handlers = body.match(/<[^>]*\son[a-z]+\s*=/gi) || [];
  for (const tag of handlers) problems.push(`has an inline event handler: ${tag.slice(0, 80)}`);
  if (/href\s*=\s*["']?\s*javascript:/i.test(body)) problems.push('has a javascript: link');
  return { name: `${pageSpec.name} served HTML has no JavaScript`, problems };
}

// Watches a page for console errors, uncaught exceptions, failed requests and HTTP errors.
function watch(page) {
  const errors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      const loc = msg.location();
      errors.push(`console error: ${msg.text()}${loc && loc.url ? ` (${loc.url})` : ''}`);
    }
  });
  page.on('pageerror', (err) => errors.push(`uncaught exception: ${err.message}`));
  page.on('requestfailed', (req) =>
    errors.push(`request failed: ${req.url()} (${req.failure()?.errorText})`),
  );
  page.on('response', (res) => {
    if (res.status() >= 400) errors.push(`HTTP ${res.status()} for ${res.url()}`);
  });
  return errors;
}

async function auditPage(browser, pageSpec, url, viewport, shotDir) {
  const name = `${pageSpec.name} @${viewport.name} (${viewport.width}px)`;
  const problems = [];
  const page = await browser.newPage();
  try {
    page.setDefaultTimeout(NAV_TIMEOUT_MS);
    const errors = watch(page);
    await page.setViewport({ width: viewport.width, height: viewport.height });
    const response = await page.goto(url, { waitUntil: 'load' });
    if (!response || response.status() !== 200) {
      problems.push(`HTTP ${response ? response.status() : 'no response'} for ${url}`);
    }
    const shot = path.join(shotDir, `${pageSpec.name}-${viewport.name}.png`);
    await page.screenshot({ path: shot, fullPage: true });

    // Content wider than the viewport means horizontal scrolling (WCAG 1.4.10 reflow);
    // tables may scroll inside their own container, the page itself must not.
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    if (overflow > 1) {
      problems.push(`page scrolls horizontally by ${overflow}px at ${viewport.width}px wide`);
    }

    await page.evaluate(axe.source);
    const result = await page.evaluate(
      (tags) =>
        // eslint-disable-next-line no-undef
        window.axe.run(document, {
          runOnly: { type: 'tag', values: tags },
          resultTypes: ['violations', 'incomplete'],
        }),
      WCAG_TAGS,
    );
    for (const v of result.violations) {
      const targets = v.nodes.map((n) => `  target: ${n.target.join(' ')}\n    ${n.failureSummary.replace(/\n/g, '\n    ')}`);
      problems.push(`axe ${v.id} [${v.impact}] ${v.help}\n  ${v.helpUrl}\n${targets.join('\n')}`);
    }
    problems.push(...errors);
    const review = result.incomplete.map((i) => `${i.id}×${i.nodes.length}`);
    return {
      name,
      problems,
      note: `axe clean${review.length ? `; needs review: ${review.join(', ')}` : ''}`,
    };
  } catch (err) {
    problems.push(`error: ${err.stack || err}`);
    return { name, problems };
  } finally {
    await page.close().catch(() => {});
  }
}

// With JavaScript off, the chart, the tables and the year selector must work: choose another
// year with the keyboard, submit the form, and land on that year's page.
async function checkWithoutJavaScript(browser, pageSpec, url) {
  const name = `${pageSpec.name} works without JavaScript`;
  const problems = [];
  const page = await browser.newPage();
  try {
    page.setDefaultTimeout(NAV_TIMEOUT_MS);
    const errors = watch(page);
    await page.setJavaScriptEnabled(false);
    await page.goto(url, { waitUntil: 'load' });
    // Puppeteer's queries run in an isolated world, which still works with page scripts off.
    for (const selector of ['h1', 'figure svg[role="img"]', 'figcaption', 'table caption', 'select#year']) {
      if (!(await page.$(selector))) problems.push(`missing ${selector}`);
    }
    const select = await page.$('select#year');
    if (select) {
      const before = await select.evaluate((s) => s.value);
      const options = await select.evaluate((s) => [...s.options].map((o) => o.value));
      const target = options.find((v) => v !== before);
      if (target) {
        await page.select('select#year', target);
        await Promise.all([
          page.waitForNavigation({ waitUntil: 'load' }),
          page.click('form.filters button[type="submit"]'),
        ]);
        const landed = new URL(page.url());
        if (landed.searchParams.get('year') !== target) {
          problems.push(`submitting year ${target} landed on ${page.url()}`);
        }
        const selected = await page.$eval('select#year', (s) => s.value);
        if (selected !== target) problems.push(`after submitting ${target}, ${selected} is selected`);
      }
    }
    problems.push(...errors);
  } catch (err) {
    problems.push(`error: ${err.stack || err}`);
  } finally {
    await page.close().catch(() => {});
  }
  return { name, problems };
}

const watchdog = setTimeout(() => fail(`gave up after ${OVERALL_TIMEOUT_MS / 1000}s`), OVERALL_TIMEOUT_MS);
watchdog.unref();
main().catch((err) => fail(err.stack || String(err)));
