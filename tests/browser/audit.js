#!/usr/bin/env node
// Real-browser accessibility audit of the civica dashboard.
//
// Usage: node tests/browser/audit.js sample=http://127.0.0.1:PORT/ [empty=http://127.0.0.1:PORT2/]
//
// Each NAME=URL names a running `civica serve`: `sample` over the sample city, `empty` over a
// warehouse with nothing ingested (the "Nessun dato" state). Pages of a server not given fail.
//
// Launches Debian's Chromium headless (never a browser downloaded by npm), loads every page
// in PAGES at every viewport in VIEWPORTS, saves a full-page screenshot of each, runs axe-core
// with the WCAG 2.1 A/AA rules, and fails listing every violation, every console error, failed
// request or HTTP error. It also checks that the pages need no JavaScript: the served HTML has
// no <script>, and with JavaScript disabled the content is there and the year form works.
//
// Environment: CHROMIUM (default /usr/bin/chromium), SCREENSHOT_DIR (default
// tests/browser/screenshots, git-ignored), AUDIT_LOGIN (`user:password` of a staff account of
// the `sample` server: pages marked `staff` are audited signed in, after posting the sign-in
// form like a browser does).
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const puppeteer = require('puppeteer-core');
const axe = require('axe-core');

// Every page type the server renders as HTML, in both languages. Add new pages here.
// `charts`: the page has charts (figure, SVG, caption, tables); `form`: the id of the select of
// its GET filter form, whose no-JavaScript submission is tried when it is `year`, or `sql` for
// the query page's textarea, whose submission is tried too; `status`: the expected HTTP status
// when not 200 (a refused query is answered 400, with the page explaining why).
const PAGES = [
  { name: 'overview', server: 'sample', path: '/', charts: true, form: 'year' },
  { name: 'overview-en', server: 'sample', path: '/?lang=en', charts: true, form: 'year' },
  { name: 'overview-2015-school', server: 'sample', path: '/?year=2015&area=school', charts: true, form: 'year' },
  // A year with no data: the chart and the first table are empty.
  { name: 'overview-2010', server: 'sample', path: '/?year=2010', charts: true, form: 'year' },
  { name: 'service', server: 'sample', path: '/servizi/iscrizione_scuola_infanzia', charts: true, form: 'year' },
  { name: 'service-en', server: 'sample', path: '/servizi/iscrizione_scuola_infanzia?lang=en', charts: true, form: 'year' },
  // A service that went online during 2018: the launch annotation on the monthly line.
  { name: 'service-launch', server: 'sample', path: '/servizi/cambio_residenza?year=2018&channel=online', charts: true, form: 'year' },
  { name: 'comparison', server: 'sample', path: '/confronto', charts: true, form: 'year' },
  { name: 'comparison-en', server: 'sample', path: '/confronto?lang=en&year=2016', charts: true, form: 'year' },
  // A period of months instead of a year (the month fields are filled in).
  { name: 'comparison-period', server: 'sample', path: '/confronto?from=2017-01&to=2017-06', charts: true },
  { name: 'service-period-en', server: 'sample', path: '/servizi/iscrizione_scuola_infanzia?lang=en&from=2017-03&to=2018-02', charts: true },
  { name: 'services', server: 'sample', path: '/servizi', charts: false, form: 'service' },
  { name: 'services-en', server: 'sample', path: '/servizi?lang=en', charts: false, form: 'service' },
  { name: 'indicators', server: 'sample', path: '/indicatori', charts: false },
  { name: 'indicators-en', server: 'sample', path: '/indicatori?lang=en', charts: false },
  { name: 'method', server: 'sample', path: '/indicatori/online_share', charts: false },
  { name: 'method-en', server: 'sample', path: '/indicatori/satisfaction_mean?lang=en', charts: false },
  { name: 'about', server: 'sample', path: '/informazioni', charts: false },
  { name: 'about-en', server: 'sample', path: '/informazioni?lang=en', charts: false },
  // Public SQL: the form, a result, a result longer than the page shows, a refused query.
  { name: 'query', server: 'sample', path: '/query', charts: false, form: 'sql' },
  { name: 'query-result-en', server: 'sample', path: '/query?lang=en&sql=SELECT%20service%2C%20year%2C%20value%2C%20n%2C%20flag%20FROM%20kpi_online_share%20ORDER%20BY%20service%2C%20year', charts: false, form: 'sql' },
  { name: 'query-truncated', server: 'sample', path: '/query?sql=SELECT%20a.service%2C%20b.year%20FROM%20kpi_requests%20a%2C%20kpi_requests%20b', charts: false },
  { name: 'query-refused', server: 'sample', path: '/query?sql=SELECT%20*%20FROM%20requests', charts: false, status: 400 },
  // The API reference, rendered from the OpenAPI document.
  { name: 'api-docs', server: 'sample', path: '/api/docs', charts: false },
  { name: 'api-docs-en', server: 'sample', path: '/api/docs?lang=en', charts: false },
  // Staff: the sign-in form (public), and the upload form once signed in (`staff`).
  { name: 'login', server: 'sample', path: '/login', charts: false },
  { name: 'login-en', server: 'sample', path: '/login?lang=en', charts: false },
  { name: 'upload', server: 'sample', path: '/staff/upload', charts: false, staff: true },
  { name: 'upload-en', server: 'sample', path: '/staff/upload?lang=en', charts: false, staff: true },
  // A page as staff see it: internal figures, under a banner saying so.
  { name: 'comparison-staff', server: 'sample', path: '/confronto', charts: true, staff: true },
  { name: 'service-staff-en', server: 'sample', path: '/servizi/suap?lang=en', charts: true, staff: true },
  // Nothing ingested yet: no years, "Nessun dato".
  { name: 'empty', server: 'empty', path: '/', charts: true, form: 'year' },
  // Error pages, in the site's frame.
  { name: 'not-found', server: 'sample', path: '/pagina-inesistente', charts: false, status: 404 },
  { name: 'bad-filter-en', server: 'sample', path: '/confronto?year=abc&lang=en', charts: false, status: 400 },
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
const OVERALL_TIMEOUT_MS = 900_000;

function fail(message) {
  console.error(`browser audit: ${message}`);
  process.exit(2);
}

async function main() {
  const servers = {};
  for (const arg of process.argv.slice(2)) {
    const m = /^([a-z]+)=(https?:\/\/.+)$/.exec(arg);
    if (!m) fail(`bad argument ${arg}; usage: node audit.js sample=http://127.0.0.1:PORT/ …`);
    servers[m[1]] = m[2];
  }
  if (Object.keys(servers).length === 0) fail('usage: node audit.js sample=http://127.0.0.1:PORT/ …');
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
    console.log(`browser audit: ${await browser.version()}`);
    const session = servers.sample ? await signIn(servers.sample) : null;
    for (const pageSpec of PAGES) {
      const base = servers[pageSpec.server];
      if (!base) {
        results.push({ name: pageSpec.name, problems: [`no server "${pageSpec.server}" given`] });
        continue;
      }
      if (pageSpec.staff && !session) {
        results.push({ name: pageSpec.name, problems: ['a staff page, and no AUDIT_LOGIN to sign in with'] });
        continue;
      }
      pageSpec.cookie = pageSpec.staff ? session : undefined;
      const url = new URL(pageSpec.path, base).href;
      results.push(await checkServedHtml(pageSpec, url));
      for (const viewport of VIEWPORTS) {
        results.push(await auditPage(browser, pageSpec, url, viewport, shotDir));
      }
      results.push(await checkWithoutJavaScript(browser, pageSpec, url));
    }
    // Last, as it adds a commit to the sample server.
    if (servers.sample && process.env.AUDIT_LOGIN) {
      results.push(await staffJourney(browser, servers.sample));
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

// Signs in to the server at `base` as AUDIT_LOGIN (`user:password`) by posting the sign-in
// form with its CSRF token and cookie; returns the session cookie (`civica_session=…`), or null
// when AUDIT_LOGIN is not set.
async function signIn(base) {
  const login = process.env.AUDIT_LOGIN;
  if (!login) return null;
  const at = login.indexOf(':');
  const [username, password] = [login.slice(0, at), login.slice(at + 1)];
  const form = await fetch(new URL('/login', base), { signal: AbortSignal.timeout(NAV_TIMEOUT_MS) });
  const html = await form.text();
  const csrf = /name="csrf" value="([^"]*)"/.exec(html);
  const cookie = (form.headers.getSetCookie() || []).find((c) => c.startsWith('civica_login_csrf='));
  if (!csrf || !cookie) fail('the sign-in form has no CSRF token or cookie');
  const answer = await fetch(new URL('/login', base), {
    method: 'POST',
    redirect: 'manual',
    signal: AbortSignal.timeout(NAV_TIMEOUT_MS),
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookie.split(';')[0] },
    body: new URLSearchParams({ username, password, csrf: csrf[1] }).toString(),
  });
  const session = (answer.headers.getSetCookie() || []).find((c) => c.startsWith('civica_session='));
  if (answer.status !== 303 || !session) fail(`signing in as ${username} failed: HTTP ${answer.status}`);
  return session.split(';')[0];
}

// The request headers of a page fetched outside the browser: Italian, and the staff session
// when the page needs one.
function pageHeaders(pageSpec) {
  const headers = { 'Accept-Language': 'it-IT,it;q=0.9' };
  if (pageSpec.cookie) headers.Cookie = pageSpec.cookie;
  return headers;
}

// Readies a browser tab for a page: an Italian reader, signed in when the page needs it.
async function prepare(page, pageSpec, url) {
  await page.setExtraHTTPHeaders({ 'Accept-Language': 'it-IT,it;q=0.9' });
  if (pageSpec.cookie) {
    const [name, value] = pageSpec.cookie.split('=');
    await page.setCookie({ name, value, url });
  }
}

// Signs the browser out again after a staff page, so that public pages stay public.
async function forget(page, pageSpec, url) {
  if (pageSpec.cookie) {
    await page.deleteCookie({ name: pageSpec.cookie.split('=')[0], url }).catch(() => {});
  }
}

// A problem when the browser did not stay on the page asked for (e.g. sent to /login).
function landedElsewhere(page, url) {
  const [asked, landed] = [new URL(url), new URL(page.url())];
  return asked.pathname === landed.pathname ? [] : [`redirected from ${asked.pathname} to ${landed.pathname}`];
}

// The HTML as served: 200, text/html, and no script at all (the pages must work without JS).
async function checkServedHtml(pageSpec, url) {
  const name = `${pageSpec.name} served HTML has no JavaScript`;
  const problems = [];
  try {
    const response = await fetch(url, {
      redirect: 'manual',
      signal: AbortSignal.timeout(NAV_TIMEOUT_MS),
      headers: pageHeaders(pageSpec),
    });
    const body = await response.text();
    const expected = pageSpec.status || 200;
    if (response.status !== expected) problems.push(`HTTP ${response.status} for ${url}, not ${expected}`);
    const type = response.headers.get('content-type') || '';
    if (!type.startsWith('text/html')) problems.push(`content-type is "${type}", not text/html`);
    for (const tag of body.match(/<script\b[^>]*>/gi) || []) problems.push(`has a script tag: ${tag}`);
    for (const tag of body.match(/<[^>]*\son[a-z]+\s*=/gi) || []) {
      problems.push(`has an inline event handler: ${tag.slice(0, 80)}`);
    }
    if (/href\s*=\s*["']?\s*javascript:/i.test(body)) problems.push('has a javascript: link');
  } catch (err) {
    problems.push(`fetching ${url}: ${err}`);
  }
  return { name, problems };
}

// Watches a page for console errors, uncaught exceptions, failed requests and HTTP errors.
// `expected`: a status other than 200 that the page itself is meant to have (and that Chromium
// reports as a console error).
function watch(page, expected = 200) {
  const errors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !(expected !== 200 && msg.text().includes(`status of ${expected}`))) {
      const loc = msg.location();
      errors.push(`console error: ${msg.text()}${loc && loc.url ? ` (${loc.url})` : ''}`);
    }
  });
  page.on('pageerror', (err) => errors.push(`uncaught exception: ${err.message}`));
  page.on('requestfailed', (req) =>
    errors.push(`request failed: ${req.url()} (${req.failure()?.errorText})`),
  );
  page.on('response', (res) => {
    const own = res.request().isNavigationRequest() && res.status() === expected;
    if (res.status() >= 400 && !own) errors.push(`HTTP ${res.status()} for ${res.url()}`);
  });
  return errors;
}

async function auditPage(browser, pageSpec, url, viewport, shotDir) {
  const name = `${pageSpec.name} @${viewport.name} (${viewport.width}px)`;
  const problems = [];
  const page = await browser.newPage();
  try {
    page.setDefaultTimeout(NAV_TIMEOUT_MS);
    const errors = watch(page, pageSpec.status);
    // Chromium asks for English by default; an Italian reader's browser asks for Italian.
    await prepare(page, pageSpec, url);
    await page.setViewport({ width: viewport.width, height: viewport.height });
    // 304: the browser revalidated its cached copy with the page's ETag (as it should).
    const response = await page.goto(url, { waitUntil: 'load' });
    if (!response || ![pageSpec.status || 200, 304].includes(response.status())) {
      problems.push(`HTTP ${response ? response.status() : 'no response'} for ${url}`);
    }
    problems.push(...landedElsewhere(page, url));
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

    const result = await runAxe(page);
    problems.push(...result.problems);
    problems.push(...(await checkSvgText(page)));
    problems.push(...(await checkKeyboard(page)));
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
    await forget(page, pageSpec, url);
    await page.close().catch(() => {});
  }
}

// axe-core's WCAG 2.1 A/AA rules on the page: its violations as problems, and what it could
// not decide (`incomplete`).
async function runAxe(page) {
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
  const problems = result.violations.map((v) => {
    const targets = v.nodes.map((n) => `  target: ${n.target.join(' ')}\n    ${n.failureSummary.replace(/\n/g, '\n    ')}`);
    return `axe ${v.id} [${v.impact}] ${v.help}\n  ${v.helpUrl}\n${targets.join('\n')}`;
  });
  return { problems, incomplete: result.incomplete };
}

// axe cannot find the background of SVG text ("needs review"): every chart text must reach
// 4.5:1 against the chart's own background (its first full-size rect, or white), lie inside the
// chart, and not overlap a bar (longer labels or a bigger font must not collide with bars).
async function checkSvgText(page) {
  const texts = await page.$$eval('svg', (svgs) =>
    svgs.flatMap((svg) => {
      const vb = svg.viewBox.baseVal;
      const rects = [...svg.querySelectorAll('rect')];
      const bgRect = rects.find(
        (r) => r.width.baseVal.value >= vb.width && r.height.baseVal.value >= vb.height,
      );
      const bg = bgRect ? getComputedStyle(bgRect).fill : 'rgb(255, 255, 255)';
      const boxes = rects.filter((r) => r !== bgRect).map((r) => r.getBBox());
      const overlaps = (a, b) =>
        a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
      return [...svg.querySelectorAll('text')].map((t) => {
        const box = t.getBBox();
        return {
          text: t.textContent.trim(),
          fill: getComputedStyle(t).fill,
          bg,
          outside: box.x < vb.x || box.y < vb.y || box.x + box.width > vb.x + vb.width
            || box.y + box.height > vb.y + vb.height,
          overlapsBar: boxes.some((b) => overlaps(box, b)),
        };
      });
    }),
  );
  const problems = [];
  for (const t of texts) {
    const ratio = contrast(t.fill, t.bg);
    if (ratio < 4.5) {
      problems.push(`chart text "${t.text}" has contrast ${ratio.toFixed(2)}:1 (${t.fill} on ${t.bg}); needs 4.5:1`);
    }
    if (t.outside) problems.push(`chart text "${t.text}" is cut off at the chart's edge`);
    if (t.overlapsBar) problems.push(`chart text "${t.text}" overlaps a bar`);
  }
  return problems;
}

// Tabs through the page with the real keyboard: every focusable element is reached in document
// order, is on screen when focused, and shows a focus indicator (outline or box-shadow) with a
// contrast of at least 3:1 against the background around it (WCAG 2.4.3, 2.4.7, 1.4.11).
async function checkKeyboard(page) {
  const problems = [];
  const count = await page.evaluate(() => {
    document.activeElement?.blur();
    window.scrollTo(0, 0);
    return focusables().length;
    function focusables() {
      return [...document.querySelectorAll('a[href], button, select, input:not([type="hidden"]), textarea, [tabindex]')]
        .filter((e) => e.tabIndex >= 0 && !e.disabled);
    }
  });
  for (let i = 0; i < count; i += 1) {
    await page.keyboard.press('Tab');
    const state = await page.evaluate((index) => {
      const all = [...document.querySelectorAll('a[href], button, select, input:not([type="hidden"]), textarea, [tabindex]')]
        .filter((e) => e.tabIndex >= 0 && !e.disabled);
      const el = document.activeElement;
      const describe = (e) => {
        if (!e || e === document.body) return 'body';
        const label = (e.getAttribute('aria-label') || e.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 40);
        return `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}${e.className ? `.${String(e.className).split(' ').join('.')}` : ''} "${label}"`;
      };
      let bg = 'rgba(0, 0, 0, 0)';
      for (let a = el && el.parentElement; a; a = a.parentElement) {
        const c = getComputedStyle(a).backgroundColor;
        if (!/rgba\(.*, 0\)$/.test(c) && c !== 'transparent') { bg = c; break; }
      }
      if (bg === 'rgba(0, 0, 0, 0)') bg = 'rgb(255, 255, 255)';
      const style = el ? getComputedStyle(el) : null;
      const rect = el ? el.getBoundingClientRect() : null;
      return {
        expected: describe(all[index]),
        actual: describe(el),
        same: el === all[index],
        outlineStyle: style && style.outlineStyle,
        outlineWidth: style ? parseFloat(style.outlineWidth) : 0,
        outlineColor: style && style.outlineColor,
        boxShadow: style && style.boxShadow,
        bg,
        onScreen: !!rect && rect.width > 0 && rect.height > 0 && rect.right > 0 && rect.bottom > 0
          && rect.left < innerWidth && rect.top < innerHeight,
      };
    }, i);
    if (!state.same) {
      problems.push(`keyboard: Tab ${i + 1} focused ${state.actual}, expected ${state.expected}`);
      break;
    }
    if (!state.onScreen) problems.push(`keyboard: ${state.actual} is not on screen when focused`);
    const colours = [];
    if (state.outlineStyle !== 'none' && state.outlineWidth >= 2) colours.push(state.outlineColor);
    if (state.boxShadow && state.boxShadow !== 'none') {
      colours.push(...(state.boxShadow.match(/rgba?\([^)]*\)/g) || []));
    }
    const visible = colours.filter((c) => !/rgba\(.*,\s*0\)$/.test(c));
    const best = Math.max(0, ...visible.map((c) => contrast(c, state.bg)));
    if (best < 3) {
      problems.push(
        `keyboard: focus indicator of ${state.actual} has contrast ${best.toFixed(2)}:1 on ${state.bg} ` +
          `(outline ${state.outlineStyle} ${state.outlineWidth}px ${state.outlineColor}; box-shadow ${state.boxShadow}); needs 3:1`,
      );
    }
  }
  return problems;
}

function luminance(colour) {
  const [r, g, b] = colour.match(/[\d.]+/g).slice(0, 3).map((v) => {
    const c = Number(v) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

// With JavaScript off, the content must be there (charts and tables where the page has them,
// the filter form, the footer's accessibility statement link) and the year form must work:
// choose another year, submit the form, and land on that year's page.
async function checkWithoutJavaScript(browser, pageSpec, url) {
  const name = `${pageSpec.name} works without JavaScript`;
  const problems = [];
  const page = await browser.newPage();
  try {
    page.setDefaultTimeout(NAV_TIMEOUT_MS);
    const errors = watch(page, pageSpec.status);
    await page.setJavaScriptEnabled(false);
    await prepare(page, pageSpec, url);
    await page.goto(url, { waitUntil: 'load' });
    problems.push(...landedElsewhere(page, url));
    // Puppeteer's queries run in an isolated world, which still works with page scripts off.
    const required = ['h1', 'html[lang]', 'footer a[href*="#accessibilita"]'];
    if (pageSpec.charts) required.push('figure svg[role="img"]', 'figcaption', 'table caption');
    if (pageSpec.form) required.push(`${pageSpec.form === 'sql' ? 'textarea' : 'select'}#${pageSpec.form}`);
    for (const selector of required) {
      if (!(await page.$(selector))) problems.push(`missing ${selector}`);
    }
    const select = pageSpec.form === 'year' ? await page.$('select#year') : null;
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
    if (pageSpec.form === 'sql') {
      // Write a statement, submit the form, and land on its result.
      const sql = 'SELECT service, year FROM kpi_requests ORDER BY service, year LIMIT 3';
      await page.$eval('textarea#sql', (t) => { t.value = ''; });
      await page.type('textarea#sql', sql);
      await Promise.all([
        page.waitForNavigation({ waitUntil: 'load' }),
        page.click('form.query-form button[type="submit"]'),
      ]);
      const landed = new URL(page.url());
      if (landed.searchParams.get('sql') !== sql) problems.push(`submitting the query landed on ${page.url()}`);
      const rows = await page.$$eval('table.query-result tbody tr', (trs) => trs.length);
      if (rows !== 3) problems.push(`the submitted query shows ${rows} rows, not 3`);
    }
    problems.push(...errors);
  } catch (err) {
    problems.push(`error: ${err.stack || err}`);
  } finally {
    await forget(page, pageSpec, url);
    await page.close().catch(() => {});
  }
  return { name, problems };
}

// What a member of staff does, in the browser as a person would: sign in with the form, see a
// page with the figures the public sees withheld, upload a messy log, follow its ingest to the
// summary and the quarantined rows. Needs AUDIT_LOGIN.
async function staffJourney(browser, base) {
  const name = 'staff journey: sign in, internal figures, upload, ingest summary';
  const problems = [];
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  try {
    page.setDefaultTimeout(NAV_TIMEOUT_MS);
    const errors = watch(page);
    await page.setExtraHTTPHeaders({ 'Accept-Language': 'it-IT,it;q=0.9' });
    const login = process.env.AUDIT_LOGIN;
    const at = login.indexOf(':');
    const [username, password] = [login.slice(0, at), login.slice(at + 1)];

    // A cell the public sees withheld: the comparison of one month, where some services have
    // fewer requests than the threshold (months tried in turn, at most 48).
    const rowCell = (html, at) => {
      const row = html.slice(at, html.indexOf('</tr>', at));
      const cell = /<td>([^<]*)<\/td>/.exec(row);
      return cell ? cell[1] : null;
    };
    const cellOf = (html, service) => {
      const at = html.indexOf(`<a href="/servizi/${service}">`);
      return at < 0 ? null : rowCell(html, at);
    };
    let comparison = null;
    let withheld = null;
    for (let i = 0; i < 48 && !withheld; i += 1) {
      const month = `${2015 + Math.floor(i / 12)}-${String((i % 12) + 1).padStart(2, '0')}`;
      const url = new URL(`/confronto?from=${month}&to=${month}`, base).href;
      const html = await (await fetch(url, {
        signal: AbortSignal.timeout(NAV_TIMEOUT_MS),
        headers: { 'Accept-Language': 'it-IT,it;q=0.9' },
      })).text();
      for (const m of html.matchAll(/<a href="\/servizi\/([a-z0-9_]+)">/g)) {
        if (rowCell(html, m.index) === 'riservato') {
          [comparison, withheld] = [url, m[1]];
          break;
        }
      }
    }
    if (!withheld) throw new Error('no month of the sample city has a withheld cell in the comparison');

    // Sign in with the form.
    await page.goto(new URL('/login', base).href, { waitUntil: 'load' });
    await page.type('input#username', username);
    await page.type('input#password', password);
    await Promise.all([
      page.waitForNavigation({ waitUntil: 'load' }),
      page.click('form.staff-form button[type="submit"]'),
    ]);
    if (new URL(page.url()).pathname !== '/staff/upload') problems.push(`signing in landed on ${page.url()}`);
    const badge = await page.$eval('.staff-badge strong', (e) => e.textContent).catch(() => null);
    if (badge !== username) problems.push(`the header shows ${badge} signed in, not ${username}`);

    // The comparison as staff see it: the banner, and the number behind the marker.
    await page.goto(comparison, { waitUntil: 'load' });
    if (!(await page.$('.internal-banner'))) problems.push('the staff comparison has no internal banner');
    const staffCell = cellOf(await page.content(), withheld);
    if (!staffCell || !/^\d{1,3},\d%$/.test(staffCell)) {
      problems.push(`staff see ${staffCell} for ${withheld} at ${comparison}, not a percentage`);
    }

    // Upload a messy export and follow its ingest.
    await page.goto(new URL('/staff/upload', base).href, { waitUntil: 'load' });
    const file = await page.$('input#file');
    await file.uploadFile(path.join(__dirname, '..', 'fixtures', 'upload_messy.csv'));
    await Promise.all([
      page.waitForNavigation({ waitUntil: 'load' }),
      page.click('form.staff-form button[type="submit"]'),
    ]);
    if (!/^\/staff\/ingests\/[^/]+$/.test(new URL(page.url()).pathname)) {
      problems.push(`the upload landed on ${page.url()}`);
    }
    // The page offers a reload link while the ingest runs: follow it (bounded).
    const deadline = Date.now() + 60_000;
    for (let i = 0; i < 60 && Date.now() < deadline && !(await page.$('table.ingest-summary')); i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await page.reload({ waitUntil: 'load' });
    }
    const summary = await page
      .$$eval('table.ingest-summary tr', (trs) => trs.map((tr) => [tr.querySelector('th')?.textContent, tr.querySelector('td')?.textContent]))
      .catch(() => []);
    if (summary.length === 0) problems.push('no ingest summary after 60 s');
    // tests/fixtures/README.md: 5 rows read, 3 accepted, 1 quarantined, 1 duplicate.
    const numbers = summary.map(([, value]) => value && value.trim());
    for (const expected of ['5', '3', '1']) {
      if (!numbers.includes(expected)) problems.push(`the summary (${JSON.stringify(summary)}) has no ${expected}`);
    }
    const quarantined = await page.$$eval('table.quarantine tbody tr', (trs) => trs.map((tr) => tr.textContent));
    if (quarantined.length !== 1 || !quarantined[0].includes('channel')) {
      problems.push(`the quarantine shows ${JSON.stringify(quarantined)}, not the one row refused for its channel`);
    }
    const axeResult = await runAxe(page);
    problems.push(...axeResult.problems.map((p) => `ingest page: ${p}`));
    problems.push(...errors);
  } catch (err) {
    problems.push(`error: ${err.stack || err}`);
  } finally {
    await context.close().catch(() => {});
  }
  return { name, problems };
}

const watchdog = setTimeout(() => fail(`gave up after ${OVERALL_TIMEOUT_MS / 1000}s`), OVERALL_TIMEOUT_MS);
watchdog.unref();
main().catch((err) => fail(err.stack || String(err)));
