// ftvs Manager: one page over the member's JSON API. It polls the cluster view
// (/ftvs/cluster) every second, follows this member's event stream
// (/ftvs/v1/events/stream), and sends the operator's actions with the manager token.
// Plain DOM, no framework, no build step; see DESIGN.md for the choices.
'use strict';

(function () {
  const VIEW_INTERVAL_MS = 1000;    // how often the cluster view is asked for
  const VIEW_TIMEOUT_MS = 4000;     // a view answer slower than this counts as lost
  const LOST_AFTER_FAILURES = 2;    // failed polls in a row before the page says "no contact"
  const ACTION_TIMEOUT_MS = 30000;  // an action's answer
  const STREAM_IDLE_MS = 40000;     // the stream sends a keepalive every 15 s; silence longer than this reconnects
  const STREAM_RETRY_MAX_MS = 10000;
  const RATE_WINDOW_MS = 5000;      // the request rate is averaged over this window
  const LAG_WARN_ENTRIES = 1000;    // a running CoServer this far behind the leader's commit index is lagging
  const HISTORY_INTERVAL_MS = 5000; // how often the last hour's charts are asked for
  const FIRST_EVENTS = 50;          // events shown when the page opens
  const MAX_EVENTS = 300;           // events kept in the list
  const TOKEN_KEY = 'ftvs.managerToken';

  const SVG_NS = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);

  const state = {
    view: null,          // the last cluster view
    viewAt: 0,           // when it arrived (Date.now())
    failures: 0,         // failed polls in a row
    lastError: '',
    kinds: {},           // member name -> coserver|witness (an unreachable member's status has no kind)
    samples: [],         // {t, idx} for the request rate
    lastSeq: 0,          // newest event seq shown
    events: 0,
    nodes: {},           // member name -> DOM references
    links: {},           // link key -> DOM references
    token: '',
    pending: null,       // the action waiting for confirmation
    busy: false,         // an action is being sent
  };

  // ---------- small helpers ----------

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }

  function svgEl(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    setAttrs(e, attrs);
    return e;
  }

  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.setAttribute('class', v);
      else e.setAttribute(k, v);
    }
  }

  function icon(name, cls) {
    const s = svgEl('svg', { class: cls, 'aria-hidden': 'true' });
    s.append(svgEl('use', { href: '#i-' + name }));
    return s;
  }

  function setIcon(svg, name) {
    svg.firstChild.setAttribute('href', '#i-' + name);
  }

  function setText(e, text) {
    if (e.textContent !== text) e.textContent = text;
  }

  function setData(e, key, value) {
    if (e.dataset[key] !== value) e.dataset[key] = value;
  }

  function fmtInt(n) {
    return typeof n === 'number' && isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
  }

  function fmtBytes(n) {
    if (!(n >= 0)) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
  }

  function fmtAmount(n, unit) {
    return unit === 'bytes' ? fmtBytes(n) : fmtInt(n) + ' ' + (unit || '');
  }

  function pad(n, w) { return String(n).padStart(w, '0'); }

  function fmtClock(t, withMillis) {
    const d = t instanceof Date ? t : new Date(t);
    if (isNaN(d)) return '';
    let s = pad(d.getHours(), 2) + ':' + pad(d.getMinutes(), 2) + ':' + pad(d.getSeconds(), 2);
    if (withMillis) s += '.' + pad(d.getMilliseconds(), 3);
    return s;
  }

  function fmtSeconds(sec) {
    if (!(sec > 0)) return '';
    if (sec < 60) return Math.ceil(sec) + ' s';
    const m = Math.floor(sec / 60), s = Math.round(sec % 60);
    if (m < 60) return m + ' min ' + s + ' s';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }

  function fmtRate(r) {
    if (r === null) return '–';
    if (r < 10) return r.toFixed(1);
    return fmtInt(r);
  }

  function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

  // fetchWithTimeout is fetch that gives up after ms.
  async function fetchWithTimeout(url, opts, ms) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), ms);
    try {
      return await fetch(url, Object.assign({ cache: 'no-store', signal: ctl.signal }, opts));
    } finally {
      clearTimeout(timer);
    }
  }

  function errText(e) {
    if (e && e.name === 'AbortError') return 'no answer in time';
    if (e instanceof TypeError) return 'the connection failed';
    return (e && e.message) || String(e);
  }

  // ---------- the cluster view ----------

  function kindOf(m) {
    return m.kind || state.kinds[m.name] || (m.name === 'witness' ? 'witness' : 'coserver');
  }

  function coservers(v) {
    return v.members.filter((m) => kindOf(m) === 'coserver');
  }

  function memberNamed(v, name) {
    return v.members.find((m) => m.name === name);
  }

  function reachable(m) { return m.role !== 'unreachable'; }

  // displayMode is the view's mode, except that a cluster where no CoServer runs or is
  // getting the virtual server, and one has failed, shows FAILED.
  function displayMode(v) {
    if (v.mode === 'no-quorum') return 'no-quorum';
    const cos = coservers(v);
    const running = cos.filter((m) => reachable(m) && m.virtual_server === 'running').length;
    const coming = cos.filter((m) => reachable(m) && (m.virtual_server === 'syncing' || m.virtual_server === 'no-module')).length;
    const failed = cos.filter((m) => m.virtual_server === 'failed').length;
    if (running === 0 && coming === 0 && failed > 0) return 'failed';
    return v.mode || 'unknown';
  }

  // whyNotRunning says in a few words why a CoServer does not run the virtual server.
  function whyNotRunning(m) {
    if (!reachable(m)) return m.name + ' does not answer';
    switch (m.virtual_server) {
      case 'disabled': return m.name + ' is disabled for maintenance';
      case 'failed': return m.name + ' failed' + (m.failure ? ': ' + m.failure : '');
      case 'syncing': return m.name + ' is syncing';
      case 'no-module': return m.name + ' has no virtual server yet';
      default: return m.name + ' is ' + (m.virtual_server || 'in an unknown state');
    }
  }

  function leaderOf(v) {
    return v.leader ? memberNamed(v, v.leader) : null;
  }

  // appliedIndex is the cluster's applied index: the leader's, else the highest known.
  function appliedIndex(v) {
    const l = leaderOf(v);
    if (l && reachable(l)) return l.applied_index || 0;
    let max = 0;
    for (const m of v.members) if (reachable(m)) max = Math.max(max, m.applied_index || 0);
    return max;
  }

  // noteRate records the applied index and returns entries per second over the window
  // (null until there is a second sample). Every request to the virtual server is one
  // log entry; the few others (elections, membership) are noise at this scale.
  function noteRate(v) {
    const now = performance.now();
    const idx = appliedIndex(v);
    const s = state.samples;
    if (s.length && idx < s[s.length - 1].idx) s.length = 0; // another history: start over
    s.push({ t: now, idx: idx });
    while (s.length > 2 && now - s[1].t >= RATE_WINDOW_MS) s.shift();
    if (s.length < 2) return null;
    const dt = (now - s[0].t) / 1000;
    if (dt < 0.5) return null;
    return Math.max(0, (idx - s[0].idx) / dt);
  }

  // readHeaders are a read's headers: with the token once it was given, for a member
  // whose reads need one (manager.reads = "token"; the others ignore it).
  function readHeaders(h) {
    const out = Object.assign({}, h);
    if (state.token) out.Authorization = 'Bearer ' + state.token;
    return out;
  }

  async function pollView() {
    try {
      const resp = await fetchWithTimeout('/ftvs/cluster?hash=1', { headers: readHeaders({ Accept: 'application/json' }) }, VIEW_TIMEOUT_MS);
      if (resp.status === 401) throw new Error('this member\'s reads need the manager token: enter it above and press Unlock actions');
      if (!resp.ok) throw new Error('HTTP ' + resp.status + ' ' + (await resp.text()).slice(0, 200));
      const v = await resp.json();
      if (!v || !Array.isArray(v.members)) throw new Error('not a cluster view');
      v.links = Array.isArray(v.links) ? v.links : [];
      state.view = v;
      state.viewAt = Date.now();
      state.failures = 0;
      render();
    } catch (e) {
      state.failures++;
      state.lastError = errText(e);
      if (state.failures >= LOST_AFTER_FAILURES || !state.view) renderLost();
    } finally {
      setTimeout(pollView, VIEW_INTERVAL_MS);
    }
  }

  // ---------- rendering ----------

  const MODES = {
    duplex: { title: 'DUPLEX', icon: 'ok' },
    simplex: { title: 'SIMPLEX', icon: 'warning' },
    syncing: { title: 'SYNCING', icon: 'sync' },
    'no-quorum': { title: 'NO QUORUM', icon: 'error' },
    failed: { title: 'FAILED', icon: 'error' },
    unknown: { title: 'NO CONTACT', icon: 'unknown' },
  };

  function render() {
    const v = state.view;
    for (const m of v.members) if (m.kind) state.kinds[m.name] = m.kind;
    const mode = displayMode(v);
    const body = document.body;
    setData(body, 'mode', mode);
    setData(body, 'viewMode', v.mode || '');
    setData(body, 'leader', v.leader || '');
    setData(body, 'servedBy', v.asked_via || '');
    $('topology').classList.remove('stale');
    $('topology').dataset.stale = 'false';
    setConn('live', 'live · via ' + (v.asked_via || '?'), 'Last view ' + fmtClock(state.viewAt));
    renderBanner(v, mode);
    renderNodes(v);
    drawLinks();
    renderLinksText(v);
    renderAlerts(v);
    renderModules(v);
    renderEventSource(v);
    renderEmergency(v);
    renderDrill(v);
    updateButtons();
  }

  // renderLinksText says every link's state in words, beside the drawing (and for a
  // screen reader): the ones down by name, or that all are up.
  function renderLinksText(v) {
    const names = v.members.map((m) => m.name).sort();
    const down = [], unknown = [];
    let n = 0;
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) {
        for (const link of ['a', 'b']) {
          n++;
          const s = linkState(v, names[i], names[j], link).state;
          if (s === 'down') down.push(names[i] + '–' + names[j] + ' ' + link);
          if (s === 'unknown') unknown.push(names[i] + '–' + names[j] + ' ' + link);
        }
      }
    }
    let text = down.length ? 'Links down: ' + down.join(', ') + '.' : 'All ' + n + ' links up.';
    if (unknown.length) text += ' Not known: ' + unknown.join(', ') + '.';
    setText($('links-text'), text);
    setData($('links-text'), 'down', String(down.length));
  }

  // alertsOf lists what needs an operator now, most severe first: what the view says
  // is wrong with a member, a link, a copy of the virtual server, a clock or a
  // certificate. The events say what happened; these say what still is.
  function alertsOf(v) {
    const out = [];
    const add = (sev, text) => out.push({ sev, text });
    if (v.mode === 'no-quorum') add('error', 'No quorum: fewer than two members reach each other, so the virtual server does not answer.');
    if (v.mode === 'simplex') add('error', 'Redundancy lost: one CoServer runs the virtual server; one more failure stops it.');
    if (v.override) add('warning', 'A start without quorum is in effect on ' + v.override.coserver + ' since ' + v.override.since + '.');
    for (const m of v.members) {
      if (!reachable(m)) {
        add('error', m.name + ' does not answer' + (m.error ? ': ' + shortCause(m.error) : '') + '.');
        continue;
      }
      const vs = m.virtual_server;
      if (kindOf(m) === 'coserver' && vs && vs !== 'running') {
        add(vs === 'syncing' ? 'info' : vs === 'disabled' ? 'warning' : 'error', m.name + '\'s virtual server is ' + (vs === 'no-module' ? 'without a module' : vs) + (m.failure ? ': ' + m.failure : '') + '.');
      }
      if (m.storage) add('error', m.name + '\'s disk fails: ' + m.storage + '.');
      if (m.clock && m.clock.skewed) add('warning', m.name + '\'s clock is ' + Math.round(Math.abs(m.clock.offset_ms) / 1000) + ' s off the cluster\'s time: check its NTP.');
      if (m.cert_expires) {
        const days = (Date.parse(m.cert_expires) - Date.now()) / 86400000;
        if (days < 30) add(days < 7 ? 'error' : 'warning', m.name + '\'s certificate expires in ' + Math.max(0, Math.floor(days)) + ' days: run ftvs cert rotate ' + m.name + '.');
      }
      if (m.probation) add('info', m.name + '\'s module is on probation after an update.');
    }
    const t = $('links-text').dataset.down;
    if (t && t !== '0') add('warning', $('links-text').textContent.split('.')[0] + ': traffic uses the other link, without redundancy.');
    const rank = { error: 0, warning: 1, info: 2 };
    return out.sort((a, b) => rank[a.sev] - rank[b.sev]);
  }

  function renderAlerts(v) {
    const list = alertsOf(v);
    const key = list.map((a) => a.sev + a.text).join('|');
    if (key === state.alertsKey) return; // unchanged: nothing to redraw or announce
    state.alertsKey = key;
    const ul = $('alerts-list');
    ul.replaceChildren(...list.map((a) => el('li', { class: 'alert', 'data-severity': a.sev }, icon(a.sev === 'info' ? 'info' : a.sev, 'icon'), el('span', { text: a.text }))));
    $('alerts-empty').hidden = list.length > 0;
    setText($('alerts-count'), list.length ? list.length + ' now' : '');
    setData($('alerts'), 'count', String(list.length));
  }

  // renderModules shows the running module and the earlier ones kept for rollback, and
  // each member's certificate expiry, in the update card.
  function renderModules(v) {
    const leader = memberNamed(v, v.leader) || coservers(v).find(reachable);
    if (!leader || !leader.module) { setText($('modules'), ''); return; }
    const hist = (leader.module_history || []);
    let text = 'Running: ' + leader.module + (leader.module_version ? ' ' + leader.module_version : '') +
      (leader.module_sha256 ? ' (sha256 ' + leader.module_sha256.slice(0, 12) + '…)' : '') + '. ';
    text += hist.length ? 'Kept for rollback: ' + hist.join(', ') + '.' : 'No earlier module kept.';
    const certs = v.members.filter((m) => m.cert_expires).map((m) => m.name + ' ' + m.cert_expires.slice(0, 10));
    if (certs.length) text += ' Certificates expire: ' + certs.join(', ') + '.';
    setText($('modules'), text);
  }

  // renderDrill shows the fault drill the members were last told of (ftvs drill): a
  // running one, so that nobody takes its faults for real ones, or the last verdict.
  function renderDrill(v) {
    let d = null;
    for (const m of v.members) {
      if (m.drill && (!d || m.drill.started > d.started || (m.drill.started === d.started && d.state === 'running'))) d = m.drill;
    }
    const box = $('drill');
    if (!d) {
      box.hidden = true;
      $('drill-report').hidden = true;
      return;
    }
    let text;
    if (d.state === 'running') {
      text = 'A fault drill is running: faults are injected on purpose until ' + fmtClock(d.until) +
        ' (ftvs drill, seed ' + d.seed + ', ' + d.faults + ' faults planned).';
    } else {
      text = 'Last fault drill, started ' + fmtClock(d.started) + ' (seed ' + d.seed + '): ' + (d.verdict || d.state) +
        ' — ' + d.faults + ' faults, ' + d.lost + ' lost.' + (d.state === 'failed' && d.replay ? ' Replay: ' + d.replay : '');
    }
    setData(box, 'state', d.state);
    setData(box, 'outcome', d.state === 'running' ? 'pending' : d.state === 'passed' ? 'ok' : 'error');
    setIcon($('drill-icon'), d.state === 'running' ? 'warning' : d.state === 'passed' ? 'ok' : 'error');
    setText($('drill-text'), text);
    box.hidden = false;
    renderDrillReport(d);
  }

  // renderDrillReport shows a finished drill's figures: its workload, and each kind of
  // fault with the longest unavailability and recovery it caused.
  function renderDrillReport(d) {
    const box = $('drill-report');
    const r = d.state === 'running' ? null : d.report;
    if (!r) {
      box.hidden = true;
      return;
    }
    let text = fmtInt(r.ops) + ' requests, ' + fmtInt(r.acknowledged) + ' acknowledged, ' + fmtInt(r.lost) + ' lost; linearizable: ' +
      (r.linearizable ? 'yes' : 'no') + '; ' + fmtInt(r.leader_changes) + ' leader changes; ' + (fmtSeconds(r.duration_s) || '0 s') + '.';
    if (typeof r.guest_clock_worst_ms === 'number') text += ' The guest\'s clock stayed within ' + fmtInt(r.guest_clock_worst_ms) + ' ms of real time.';
    setText($('drill-report-text'), text);
    const rows = (r.by_kind || []).map((k) => el('tr', { 'data-kind': k.kind },
      el('th', { scope: 'row', text: k.kind }),
      el('td', { text: fmtInt(k.count) }),
      el('td', { text: fmtInt(k.longest_unavailable_ms) + ' ms' }),
      el('td', { text: k.longest_recovery_s.toFixed(1) + ' s' })));
    const body = $('drill-report-table').tBodies[0];
    const key = JSON.stringify(r);
    if (body.dataset.key !== key) {
      body.replaceChildren(...rows);
      body.dataset.key = key;
    }
    box.hidden = false;
  }

  function renderLost() {
    setData(document.body, 'mode', 'unknown');
    const since = state.viewAt ? ' since ' + fmtClock(state.viewAt) : '';
    setConn('lost', 'no contact', state.lastError);
    $('topology').classList.add('stale');
    $('topology').dataset.stale = 'true';
    setText($('stale-note'), 'Last known state' + (state.viewAt ? ', at ' + fmtClock(state.viewAt) : ''));
    state.samples.length = 0;
    setText($('vs-rate'), '–');
    $('vs-rate').dataset.rate = '';
    setModeBanner('unknown', 'The member serving this page does not answer' + since + ' (' + state.lastError + ').', otherManagers());
    $('sync').hidden = true;
    updateButtons();
  }

  // otherManagers are links to the other members' Manager pages (from the last view).
  function otherManagers() {
    const v = state.view;
    if (!v) return null;
    const links = v.members.filter((m) => m.name !== v.asked_via && m.manager)
      .map((m) => el('a', { href: m.manager, text: m.name }));
    if (!links.length) return null;
    const span = el('span', { class: 'mode-links' }, ' Open another member\'s Manager: ');
    links.forEach((a, i) => { if (i) span.append(' · '); span.append(a); });
    return span;
  }

  function setModeBanner(mode, detail, extra) {
    const m = MODES[mode] || { title: String(mode).toUpperCase(), icon: 'unknown' };
    setText($('mode'), m.title);
    setIcon($('mode-icon'), m.icon);
    const d = $('mode-detail');
    d.textContent = detail;
    if (extra) d.append(extra);
    document.title = m.title + ' · ftvs Manager';
  }

  function renderBanner(v, mode) {
    const cos = coservers(v);
    const running = cos.filter((m) => reachable(m) && m.virtual_server === 'running');
    const others = cos.filter((m) => !running.includes(m));
    let detail;
    switch (mode) {
      case 'duplex':
        detail = 'Both CoServers run the virtual server in lockstep. All is well.';
        break;
      case 'simplex':
        detail = 'Redundancy lost: only ' + (running.map((m) => m.name).join(', ') || 'one CoServer') +
          ' runs the virtual server' + (others.length ? ' — ' + others.map(whyNotRunning).join('; ') : '') + '.';
        if (cos.length === 1) detail = 'A lone CoServer (one-sided start): no redundancy.';
        if (v.override) {
          detail = v.override.coserver + ' was started WITHOUT QUORUM by the operator at ' + fmtClock(v.override.since) +
            ' and serves alone. When ' + v.override.excluded.join(' and ') + ' return, they sync from it and the override clears.';
        }
        break;
      case 'syncing': {
        const syncing = others.filter(reachable);
        detail = (syncing.length ? syncing.map((m) => m.name).join(', ') : 'A CoServer') +
          ' is catching up' + (running.length ? ' from ' + running[0].name : '') + '; no redundancy until it has.';
        break;
      }
      case 'no-quorum':
        detail = 'Fewer than two members reach each other: requests are refused (503) until a second member is back.' +
          (v.unreachable && v.unreachable.length ? ' Unreachable: ' + v.unreachable.join(', ') + '.' : '');
        break;
      case 'failed':
        detail = 'No CoServer runs the virtual server: ' + cos.map(whyNotRunning).join('; ') + '.';
        break;
      default:
        detail = 'The cluster reports mode "' + v.mode + '".';
    }
    setModeBanner(mode, detail, mode === 'no-quorum' ? el('span', { text: ' If the other CoServer and the witness are lost for good, see Emergency below.' }) : null);

    // The virtual server's facts: from the leader, else any CoServer that has a module.
    const l = leaderOf(v);
    const src = (l && l.module) ? l : cos.find((m) => m.module) || null;
    setText($('vs-module'), src ? src.module : '–');
    const ver = src ? (src.module_version ? 'version ' + src.module_version
      : src.module_sha256 ? 'sha256 ' + src.module_sha256.slice(0, 12) : '') : '';
    setText($('vs-version'), ver);
    $('vs-version').title = src && src.module_sha256 ? 'sha256 ' + src.module_sha256 : '';
    setText($('vs-applied'), fmtInt(appliedIndex(v)));
    const rate = noteRate(v);
    setText($('vs-rate'), fmtRate(rate));
    $('vs-rate').dataset.rate = rate === null ? '' : rate.toFixed(2);
    $('vs-rate').title = 'Log entries applied per second over the last ' + RATE_WINDOW_MS / 1000 + ' s (each request is one entry)';
    setText($('vs-leader'), v.leader || 'none');

    // Sync progress: the first CoServer that reports one; a bar without numbers while a
    // CoServer catches up from the log.
    const sy = $('sync');
    const withSync = cos.find((m) => reachable(m) && m.sync);
    if (withSync) {
      const s = withSync.sync;
      const pct = s.total > 0 ? Math.min(100, 100 * s.done / s.total) : 0;
      sy.hidden = false;
      sy.dataset.indeterminate = 'false';
      sy.dataset.done = String(s.done);
      sy.dataset.total = String(s.total);
      $('sync-fill').style.width = pct.toFixed(1) + '%';
      setText($('sync-text'), withSync.name + ': ' + s.phase + ' — ' + fmtAmount(s.done, s.unit) + ' of ' +
        fmtAmount(s.total, s.unit) + ' (' + pct.toFixed(0) + '%)');
      setText($('sync-eta'), s.eta_seconds > 0 ? 'ETA ' + fmtSeconds(s.eta_seconds) : '');
    } else if (mode === 'syncing') {
      sy.hidden = false;
      sy.dataset.indeterminate = 'true';
      sy.dataset.done = '';
      sy.dataset.total = '';
      $('sync-fill').style.width = '';
      const who = cos.find((m) => reachable(m) && m.virtual_server !== 'running');
      setText($('sync-text'), who ? who.name + ': ' + (who.virtual_server === 'no-module' ? 'waiting for a copy of the virtual server' : 'catching up from the log') : 'catching up');
      setText($('sync-eta'), '');
    } else {
      sy.hidden = true;
    }
  }

  // health says how a member is: ok (green), syncing (blue), warning (amber), error
  // (red) or unknown (grey), with the state the test and the CSS read and a sentence.
  function health(m, v) {
    const kind = kindOf(m);
    if (!reachable(m)) {
      return { health: 'error', state: 'unreachable', icon: 'error', text: 'Does not answer' + (m.error ? ' (' + shortCause(m.error) + ')' : '') + '.', more: m.error || '' };
    }
    if (kind === 'witness') {
      if (m.role === 'candidate') return { health: 'warning', state: 'up', icon: 'warning', text: 'Candidate: an election is under way.' };
      if (m.role === 'leader') return { health: 'warning', state: 'up', icon: 'warning', text: 'The witness leads: it hands leadership to a CoServer as soon as one can take it.' };
      return { health: 'ok', state: 'up', icon: 'ok', text: '' };
    }
    const vs = m.virtual_server || 'unknown';
    switch (vs) {
      case 'failed':
        return { health: 'error', state: 'failed', icon: 'error', text: 'Virtual server failed' + (m.failure ? ': ' + m.failure : '') + '.' };
      case 'syncing':
        return { health: 'syncing', state: 'syncing', icon: 'sync', text: 'Syncing from the other CoServer' + (m.sync ? ' (' + m.sync.phase + ')' : '') + '.' };
      case 'no-module':
        return { health: 'syncing', state: 'no-module', icon: 'sync', text: 'No virtual server yet: waiting for a copy from the other CoServer.' };
      case 'disabled':
        return { health: 'warning', state: 'disabled', icon: 'warning', text: 'Disabled for maintenance: the other CoServer runs the virtual server alone.' };
      case 'quarantined':
        return { health: 'error', state: 'quarantined', icon: 'error', text: 'Quarantined: its copy of the virtual server differs from the other CoServer\'s' + (m.failure ? ' (' + m.failure + ')' : '') + '; it answers no client.' };
      case 'running':
        break;
      default:
        return { health: 'unknown', state: vs, icon: 'unknown', text: 'Virtual server state unknown.' };
    }
    if (m.role === 'candidate') return { health: 'warning', state: 'running', icon: 'warning', text: 'Candidate: an election is under way.' };
    const l = leaderOf(v);
    if (l && reachable(l) && l !== m) {
      const lag = (l.commit_index || 0) - (m.applied_index || 0);
      if (lag > LAG_WARN_ENTRIES) {
        return { health: 'warning', state: 'lagging', icon: 'warning', text: 'Lagging: ' + fmtInt(lag) + ' entries behind the leader.' };
      }
    }
    return { health: 'ok', state: 'running', icon: 'ok', text: '' };
  }

  // shortCause is the gist of a connection error: its last cause, without the URL.
  function shortCause(err) {
    const known = ['connection refused', 'no route to host', 'network is unreachable', 'connection reset', 'i/o timeout',
      'context deadline exceeded', 'timeout', 'EOF'];
    for (const k of known) if (err.includes(k)) return k === 'context deadline exceeded' ? 'no answer in time' : k;
    const parts = err.split(': ');
    return parts[parts.length - 1].slice(0, 80);
  }

  function nodeFor(m) {
    const name = m.name;
    if (state.nodes[name]) return state.nodes[name];
    const kind = kindOf(m);
    const n = {};
    n.root = el('div', { class: 'node', 'data-member': name, 'data-kind': kind });
    n.icon = icon('ok', 'node-icon');
    n.role = el('span', { class: 'role' });
    n.name = el('a', { class: 'node-name', text: name });
    n.root.append(el('div', { class: 'node-head' }, n.icon, n.name, n.role));
    n.kind = kind === 'witness' ? 'Witness' : 'CoServer';
    n.vs = el('dd', { class: 'vs-state' });
    n.applied = el('dd', { class: 'num' });
    const facts = el('dl', { class: 'facts' },
      el('dt', { text: kind === 'witness' ? 'Role' : 'Virtual server' }), n.vs,
      el('dt', { text: 'Applied index' }), n.applied);
    if (kind === 'coserver') {
      n.memory = el('dd', { class: 'num' });
      facts.append(el('dt', { text: 'Guest memory' }), n.memory);
      n.agreed = el('dd', { class: 'num', 'data-field': 'agreed' });
      facts.append(el('dt', { text: 'Copies agree at' }), n.agreed);
      n.hash = el('dd', { class: 'num', 'data-field': 'state-hash' });
      facts.append(el('dt', { text: 'Checked state' }), n.hash);
    }
    n.root.append(facts);
    n.syncFill = el('div', { class: 'fill' });
    n.sync = el('div', { class: 'node-sync', hidden: '' }, el('div', { class: 'bar' }, n.syncFill));
    n.warning = el('div', { class: 'node-warning', hidden: '' });
    n.meta = el('div', { class: 'node-meta' });
    n.root.append(n.sync, n.warning, n.meta);
    if (kind === 'coserver') {
      n.transfer = actionButton('transfer', name, 'Make leader');
      n.toggle = actionButton('disable', name, 'Disable');
      n.resync = actionButton('sync', name, 'Sync');
      n.root.append(el('div', { class: 'node-actions' }, n.transfer, n.toggle, n.resync));
    }
    $('topology').append(n.root);
    state.nodes[name] = n;
    return n;
  }

  function actionButton(action, target, label, cls) {
    const b = el('button', { type: 'button', class: 'btn btn-small' + (cls ? ' ' + cls : ''), 'data-action': action, 'data-target': target, text: label });
    b.addEventListener('click', () => askConfirm(b.dataset.action, b.dataset.target));
    return b;
  }

  function renderNodes(v) {
    for (const m of v.members) {
      const n = nodeFor(m);
      const h = health(m, v);
      setData(n.root, 'health', h.health);
      setData(n.root, 'state', h.state);
      setData(n.root, 'role', m.role || 'unknown');
      setIcon(n.icon, h.icon);
      n.icon.setAttribute('aria-label', h.health);
      n.root.title = h.text + (h.more ? '\n' + h.more : '');
      setText(n.role, m.role || 'unknown');
      setData(n.role, 'role', m.role || 'unknown');
      if (kindOf(m) === 'witness') {
        setText(n.vs, reachable(m) ? 'tie-breaker (no guest)' : 'unknown');
        setData(n.vs, 'vs', reachable(m) ? 'none' : 'unknown');
      } else {
        const vs = m.virtual_server || 'unknown';
        setText(n.vs, vs === 'no-module' ? 'no module yet' : vs);
        setData(n.vs, 'vs', vs);
      }
      setText(n.applied, reachable(m) ? fmtInt(m.applied_index) : '–');
      if (n.memory) setText(n.memory, reachable(m) && m.memory_bytes ? fmtBytes(m.memory_bytes) : '–');
      if (n.agreed) {
        // The last index at which both CoServers' state hashes were equal.
        const d = reachable(m) && m.divergence;
        setText(n.agreed, d && d.last_agreed_index ? fmtInt(d.last_agreed_index) : '–');
        n.agreed.title = d ? (d.last_diverged ? 'Last divergence: ' + d.last_diverged : 'No divergence detected') +
          ' · ' + fmtInt(d.checks) + ' state checks, ' + fmtInt(d.response_checks) + ' response checks' : '';
      }
      if (n.hash) {
        // The state hash this CoServer computed at its last comparison point (never the
        // live state's: hashing that is costly and takes the manager token).
        const h = reachable(m) && m.state_hash;
        setText(n.hash, h ? h.slice(0, 8) + '… @ ' + fmtInt(m.state_hash_index) : '–');
        n.hash.title = h ? 'State hash ' + h + ' at applied index ' + fmtInt(m.state_hash_index) +
          ', computed at the last comparison point' : 'No state hash computed at a comparison point yet';
      }
      // Sync progress in the box too.
      if (reachable(m) && m.sync && m.sync.total > 0) {
        n.sync.hidden = false;
        n.syncFill.style.width = Math.min(100, 100 * m.sync.done / m.sync.total).toFixed(1) + '%';
      } else {
        n.sync.hidden = true;
      }
      n.warning.hidden = !h.text;
      setText(n.warning, h.text);
      // pid · version · term · a link to the member's own Manager page.
      n.meta.textContent = '';
      const parts = [n.kind];
      if (m.pid) parts.push('pid ' + m.pid);
      if (m.version) parts.push(m.version);
      if (m.term) parts.push('term ' + m.term);
      if (!reachable(m) && m.gateway) parts.push(m.gateway.replace(/^https?:\/\//, ''));
      n.meta.append(parts.join(' · '));
      // The name leads to the member's own Manager page (its events).
      if (m.manager && m.name !== v.asked_via) {
        n.name.href = m.manager;
        n.name.title = 'Open ' + m.name + '\'s own Manager page (its events)';
      } else {
        n.name.removeAttribute('href');
        n.name.title = m.name === v.asked_via ? 'This page is served by ' + m.name : '';
      }
      n.meta.title = (m.gateway || '') + (m.uptime_seconds ? ' · up ' + fmtSeconds(m.uptime_seconds) : '');
      if (n.toggle) {
        const disabled = m.virtual_server === 'disabled';
        n.toggle.dataset.action = disabled ? 'enable' : 'disable';
        setText(n.toggle, disabled ? 'Enable' : 'Disable');
      }
    }
  }

  // ---------- links ----------

  // linkState combines what both ends report about one link of a pair: down if either
  // end sees it down, up if every reporting end sees it up, unknown if none reports.
  function linkState(v, p, q, link) {
    const reports = v.links.filter((l) => l.link === link &&
      ((l.from === p && l.to === q) || (l.from === q && l.to === p)));
    if (!reports.length) return { state: 'unknown', reports: reports };
    const down = reports.some((l) => l.state !== 'up');
    return { state: down ? 'down' : 'up', reports: reports };
  }

  function linkTooltip(p, q, link, ls) {
    const lines = ['Link ' + link + ' between ' + p + ' and ' + q + ': ' + ls.state];
    for (const r of ls.reports) {
      let s = r.from + ' → ' + r.to + ' (' + r.addr + '): ' + r.state;
      if (r.since) s += ' since ' + fmtClock(r.since);
      if (r.reason) s += ' — ' + r.reason;
      lines.push(s);
    }
    if (!ls.reports.length) lines.push('Neither end answers: the state of this link is not known.');
    return lines.join('\n');
  }

  function linkFor(key) {
    if (state.links[key]) return state.links[key];
    const g = svgEl('g', { 'data-link': key });
    const title = svgEl('title');
    const hit = svgEl('line', { class: 'link-hit' });
    const line = svgEl('line', { class: 'link' });
    const label = svgEl('text', { class: 'link-label', 'text-anchor': 'middle', 'dominant-baseline': 'central' });
    const warn = svgEl('g', { class: 'link-warn' });
    warn.append(svgEl('circle', { r: '6.5' }), svgEl('text', { text: '!' }));
    g.append(title, line, hit, label, warn);
    $('links').append(g);
    return (state.links[key] = { g: g, title: title, hit: hit, line: line, label: label, warn: warn });
  }

  // exitParam is where (0..1) the segment a→b leaves the rectangle r that contains a.
  function exitParam(a, b, r) {
    let t = 1;
    const dx = b.x - a.x, dy = b.y - a.y;
    if (dx > 0) t = Math.min(t, (r.right - a.x) / dx);
    if (dx < 0) t = Math.min(t, (r.left - a.x) / dx);
    if (dy > 0) t = Math.min(t, (r.bottom - a.y) / dy);
    if (dy < 0) t = Math.min(t, (r.top - a.y) / dy);
    return Math.max(0, t);
  }

  // anchor is where a box's links start: centred, at the height of its first lines, so
  // that the links stay put when a box grows (a warning, a progress bar).
  function anchor(r) {
    return { x: (r.left + r.right) / 2, y: r.top + Math.min((r.bottom - r.top) / 2, 70) };
  }

  function drawLinks() {
    const v = state.view;
    if (!v) return;
    const topo = $('topology').getBoundingClientRect();
    const names = v.members.map((m) => m.name).filter((n) => state.nodes[n]);
    const rects = {};
    for (const n of names) {
      const r = state.nodes[n].root.getBoundingClientRect();
      rects[n] = { left: r.left - topo.left, right: r.right - topo.left, top: r.top - topo.top, bottom: r.bottom - topo.top };
    }
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) {
        const [p, q] = [names[i], names[j]].sort();
        const rp = rects[p], rq = rects[q];
        const cp = anchor(rp), cq = anchor(rq);
        const len = Math.hypot(cq.x - cp.x, cq.y - cp.y) || 1;
        const nx = -(cq.y - cp.y) / len, ny = (cq.x - cp.x) / len; // unit normal
        for (const link of ['a', 'b']) {
          const key = p + '-' + q + '-' + link;
          const L = linkFor(key);
          const ls = linkState(v, p, q, link);
          const off = link === 'a' ? -7 : 7;
          const a = { x: cp.x + nx * off, y: cp.y + ny * off };
          const b = { x: cq.x + nx * off, y: cq.y + ny * off };
          for (const ln of [L.line, L.hit]) {
            setAttrs(ln, { x1: a.x.toFixed(1), y1: a.y.toFixed(1), x2: b.x.toFixed(1), y2: b.y.toFixed(1) });
          }
          // The visible part runs between the boxes; mark its middle.
          const t0 = exitParam(a, b, rp), t1 = 1 - exitParam(b, a, rq);
          const tm = (t0 + t1) / 2;
          const mid = { x: a.x + (b.x - a.x) * tm, y: a.y + (b.y - a.y) * tm };
          const lo = link === 'a' ? -13 : 13;
          setAttrs(L.label, { x: (mid.x + nx * lo).toFixed(1), y: (mid.y + ny * lo).toFixed(1) });
          setText(L.label, link);
          L.warn.setAttribute('transform', 'translate(' + mid.x.toFixed(1) + ' ' + mid.y.toFixed(1) + ')');
          L.warn.style.display = ls.state === 'down' ? '' : 'none';
          setData(L.g, 'state', ls.state);
          setData(L.line, 'state', ls.state);
          setText(L.title, linkTooltip(p, q, link, ls));
        }
      }
    }
  }

  // ---------- events ----------

  function setStream(s, text) {
    setData($('stream'), 'state', s);
    setText($('stream-text'), text);
  }

  function setConn(s, text, title) {
    setData($('conn'), 'state', s);
    setText($('conn-text'), text);
    $('conn').title = title || '';
  }

  function renderEventSource(v) {
    if ($('events-cluster').checked) return; // pollClusterEvents says where they come from
    const p = $('events-source');
    const key = v.asked_via + '|' + v.members.map((m) => m.name + '=' + (m.manager || '')).join(',');
    if (p.dataset.key === key) return;
    p.dataset.key = key;
    p.textContent = 'Live events of ' + (v.asked_via || 'this member') + ', the member serving this page. ';
    const others = v.members.filter((m) => m.name !== v.asked_via && m.manager);
    if (others.length) {
      p.append('Each member keeps its own log: see ');
      others.forEach((m, i) => { if (i) p.append(' · '); p.append(el('a', { href: m.manager, text: m.name })); });
      p.append(', or run ftvs events --cluster DIR.');
    }
  }

  function detailsText(d) {
    if (!d || typeof d !== 'object') return '';
    return Object.keys(d).sort().map((k) => k + '=' + d[k]).join(' ');
  }

  function addEvent(ev, live) {
    if (!ev || typeof ev !== 'object') return;
    if (ev.seq && ev.seq <= state.lastSeq) return;
    if (ev.seq) state.lastSeq = ev.seq;
    const li = eventItem(ev);
    if (live) li.classList.add('fresh');
    const list = $('events');
    list.prepend(li);
    while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
    if (!$('events-cluster').checked) $('events-empty').hidden = true;
  }

  // Every member's events (GET /ftvs/v1/events?scope=cluster, which the serving member
  // gathers over the links), while "every member" is checked: polled, newest first.
  async function pollClusterEvents() {
    if (!$('events-cluster').checked) return;
    try {
      const r = await fetchWithTimeout('/ftvs/v1/events?scope=cluster&limit=' + FIRST_EVENTS * 2, { headers: readHeaders({}) }, VIEW_TIMEOUT_MS);
      if (r.ok) {
        const d = await r.json();
        const evs = (d.events || []).slice().reverse();
        $('events-all').replaceChildren(...evs.map(eventItem));
        $('events-empty').hidden = evs.length > 0;
        const away = (d.unreachable || []);
        setText($('events-source'), 'Every member\'s events, gathered by ' + (d.asked_via || 'this member') + ' every 5 s' +
          (away.length ? '; not answering: ' + away.join(', ') : '') + '.');
        $('events-source').dataset.key = '';
      }
    } catch (e) {
      // The view's poll says when the member is out of reach.
    }
    setTimeout(pollClusterEvents, HISTORY_INTERVAL_MS);
  }

  function eventItem(ev) {
    const sev = ['info', 'warning', 'error'].includes(ev.severity) ? ev.severity : 'info';
    const details = detailsText(ev.details);
    const li = el('li', {
      'data-severity': sev, 'data-code': ev.code || '', 'data-member': ev.member || '', 'data-seq': String(ev.seq || 0),
      title: new Date(ev.time).toString() + (details ? '\n' + details : ''),
    },
    icon(sev, 'ev-icon'),
    el('div', { class: 'ev-line' },
      el('span', { class: 'ev-time', text: fmtClock(ev.time, true) }),
      el('span', { class: 'ev-member', text: ev.member || '' }),
      el('span', { class: 'ev-code', text: ev.code || '' })),
    el('div', { class: 'ev-msg', text: ev.message || '' },
      details ? el('span', { class: 'ev-details', text: details }) : null));
    return li;
  }

  // handleBlock takes one server-sent event block (lines up to a blank line).
  function handleBlock(block, live) {
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
    }
    if (!data.length) return; // a comment (keepalive) or an empty block
    try {
      addEvent(JSON.parse(data.join('\n')), live);
    } catch (e) {
      // a malformed event: skip it, keep the stream
    }
  }

  // followEvents reads the event stream with fetch (an EventSource would need a
  // listener per event name: the server names each event by its code) and reconnects
  // after the newest event seen, with backoff.
  async function followEvents() {
    let retryMs = 1000;
    for (;;) {
      const url = state.lastSeq > 0 ? '/ftvs/v1/events/stream?after=' + state.lastSeq
        : '/ftvs/v1/events/stream?limit=' + FIRST_EVENTS;
      const ctl = new AbortController();
      let idle = null;
      const touch = () => { clearTimeout(idle); idle = setTimeout(() => ctl.abort(), STREAM_IDLE_MS); };
      try {
        touch();
        const resp = await fetch(url, { cache: 'no-store', headers: readHeaders({ Accept: 'text/event-stream' }), signal: ctl.signal });
        if (!resp.ok || !resp.body) throw new Error('HTTP ' + resp.status);
        setStream('live', 'live');
        retryMs = 1000;
        const reader = resp.body.getReader();
        const dec = new TextDecoder();
        const opened = Date.now();
        let buf = '';
        for (;;) {
          const r = await reader.read();
          if (r.done) break;
          touch();
          buf += dec.decode(r.value, { stream: true }).replace(/\r\n?/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            handleBlock(buf.slice(0, i), Date.now() - opened > 1500);
            buf = buf.slice(i + 2);
          }
        }
        throw new Error('the stream ended');
      } catch (e) {
        setStream('lost', 'reconnecting');
      } finally {
        clearTimeout(idle);
      }
      await sleep(retryMs);
      retryMs = Math.min(retryMs * 2, STREAM_RETRY_MAX_MS);
    }
  }

  // ---------- actions ----------

  const ACTIONS = {
    transfer: {
      title: (n) => 'Make ' + n + ' the leader',
      text: (n, v) => {
        const cur = v && v.leader ? v.leader : 'the current leader';
        return ['Leadership moves from ' + cur + ' to ' + n + '. Both CoServers keep running the virtual server; requests arriving during the hand-over wait a few milliseconds.'];
      },
      ok: 'Transfer leadership',
      path: () => '/ftvs/v1/leadership/transfer',
      body: (n) => ({ to: n }),
    },
    disable: {
      title: (n) => 'Disable ' + n + ' for maintenance',
      text: (n) => [
        n + ' hands over leadership and stops counting as a running copy: the virtual server runs on the other CoServer alone — SIMPLEX, no redundancy — until you enable ' + n + ' again.',
        'You can then stop ' + n + ' without a failover. The setting survives restarts.',
      ],
      ok: 'Disable',
      path: (n) => '/ftvs/v1/coservers/' + encodeURIComponent(n) + '/disable',
    },
    enable: {
      title: (n) => 'Enable ' + n,
      text: (n) => [n + ' counts as a running copy of the virtual server again as soon as it has caught up; the cluster then returns to DUPLEX.'],
      ok: 'Enable',
      path: (n) => '/ftvs/v1/coservers/' + encodeURIComponent(n) + '/enable',
    },
    sync: {
      title: (n) => 'Sync ' + n + ' again',
      text: (n) => [
        n + ' copies the virtual server again from the other CoServer: a snapshot of its state, then the log after it.',
        'Until the copy is complete only the other CoServer is up to date: no redundancy meanwhile.',
      ],
      ok: 'Sync',
      path: (n) => '/ftvs/v1/coservers/' + encodeURIComponent(n) + '/sync',
    },
    rehearse: {
      title: () => 'Rehearse ' + moduleFileName(),
      text: () => ['Every check and the rehearsal on every running CoServer, on a copy of its live state. Nothing is changed, whatever the outcome.'],
      ok: 'Rehearse',
      path: () => '/ftvs/v1/update',
      body: async () => ({ module: await moduleFileBase64(), simplex: $('update-simplex').checked, dry_run: true }),
    },
    update: {
      title: () => 'Update to ' + moduleFileName(),
      text: () => [
        'The module is checked and rehearsed on every running CoServer first; if anything fails, nothing changes and you see every reason with its remedy.',
        'If all passes, both CoServers switch at the same log entry, carrying the state across. The new module is then on probation: if it traps on several requests in a row, the virtual server rolls back by itself.',
      ],
      ok: 'Update',
      path: () => '/ftvs/v1/update',
      body: async () => ({ module: await moduleFileBase64(), simplex: $('update-simplex').checked }),
    },
    rollback: {
      title: () => 'Roll back the module',
      text: () => ['Back to the previous module, carrying the current state across (it is rehearsed first). Writes made under the current module are kept.'],
      ok: 'Roll back',
      path: () => '/ftvs/v1/rollback',
      body: () => ({}),
    },
    override: {
      title: (n) => 'Start ' + n + ' without quorum',
      text: (n) => [
        'The classic one-sided start, for the day both the other CoServer and the witness are dead and will not come back soon: ' + n + ' starts serving the virtual server alone, from its own copy, without a majority to agree.',
        '!Do this only if you are certain the other CoServer is not running the virtual server anywhere. Two sides serving at once diverge, and whatever the other side acknowledged after ' + n + '\'s last entry is lost.',
      ],
      ok: 'Start without quorum',
      danger: true,
      typed: true,
      path: () => '/ftvs/v1/override/start-without-quorum',
      body: (n, typed) => ({ coserver: n, confirm: typed }),
    },
  };

  function moduleFileName() {
    const f = $('update-file').files[0];
    return f ? f.name : 'a module';
  }

  // moduleFileBase64 reads the chosen module as standard base64.
  async function moduleFileBase64() {
    const f = $('update-file').files[0];
    if (!f) throw new Error('choose a .wasm module first');
    const bytes = new Uint8Array(await f.arrayBuffer());
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  }

  function loadToken() {
    try { state.token = sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { state.token = ''; }
  }

  function saveToken(tok) {
    state.token = tok;
    try {
      if (tok) sessionStorage.setItem(TOKEN_KEY, tok);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) {
      // no storage (private mode): the token lives until the page closes
    }
    setData(document.body, 'actions', tok ? 'unlocked' : 'locked');
    updateButtons();
  }

  // reasonNotNow says why an action cannot be asked for now ('' if it can).
  function reasonNotNow(action, target) {
    if (!state.token) return 'Unlock actions first (manager token).';
    if (state.busy) return 'An action is under way.';
    const v = state.view;
    if (action === 'override') return '';
    if (action === 'update' || action === 'rehearse') return $('update-file').files.length ? '' : 'Choose a .wasm module first.';
    if (action === 'rollback') return '';
    if (!v || document.body.dataset.mode === 'unknown') return 'No contact with the cluster.';
    const m = memberNamed(v, target);
    if (!m || !reachable(m)) return target + ' does not answer.';
    if (action === 'transfer') {
      if (v.leader === target) return target + ' already leads.';
      if (m.virtual_server !== 'running') return target + ' cannot lead now: it is ' + m.virtual_server + '.';
    }
    return '';
  }

  function updateButtons() {
    for (const b of document.querySelectorAll('button[data-action]')) {
      const why = reasonNotNow(b.dataset.action, b.dataset.target);
      b.disabled = !!why;
      const spec = ACTIONS[b.dataset.action];
      b.title = why || (spec ? spec.title(b.dataset.target) + '…' : '');
    }
  }

  function renderEmergency(v) {
    const box = $('emergency-buttons');
    for (const m of coservers(v)) {
      if (box.querySelector('[data-target="' + m.name + '"]')) continue;
      box.append(actionButton('override', m.name, 'Start ' + m.name + ' alone…', 'btn-danger'));
    }
  }

  function askConfirm(action, target) {
    const spec = ACTIONS[action];
    if (!spec || reasonNotNow(action, target)) return;
    state.pending = { action: action, target: target };
    setText($('confirm-title'), spec.title(target));
    const text = $('confirm-text');
    text.textContent = '';
    for (const para of spec.text(target, state.view)) {
      const warn = para.startsWith('!');
      text.append(el('p', { class: warn ? 'warn' : '', text: warn ? para.slice(1) : para }));
    }
    const ok = $('confirm-ok');
    ok.textContent = spec.ok;
    ok.className = 'btn ' + (spec.danger ? 'btn-danger' : 'btn-primary');
    const typed = $('confirm-typed'), input = $('confirm-input');
    typed.hidden = !spec.typed;
    input.value = '';
    setText($('confirm-expect'), target);
    ok.disabled = !!spec.typed;
    const dlg = $('confirm');
    dlg.dataset.action = action;
    dlg.dataset.target = target;
    dlg.showModal();
    (spec.typed ? input : $('confirm-cancel')).focus();
  }

  function closeConfirm() {
    state.pending = null;
    if ($('confirm').open) $('confirm').close();
  }

  function showResult(outcome, text) {
    const box = $('action-result');
    box.hidden = false;
    box.dataset.outcome = outcome;
    setIcon($('action-result-icon'), outcome === 'ok' ? 'ok' : outcome === 'error' ? 'error' : 'info');
    setText($('action-result-text'), text);
  }

  async function runConfirmed() {
    const p = state.pending;
    if (!p) return;
    const spec = ACTIONS[p.action];
    const typed = $('confirm-input').value.trim();
    if (spec.typed && typed !== p.target) return;
    closeConfirm();
    state.busy = true;
    updateButtons();
    const title = spec.title(p.target);
    showResult('pending', title + ': asking the cluster…');
    try {
      const body = spec.body ? await spec.body(p.target, typed) : {};
      const resp = await fetchWithTimeout(spec.path(p.target), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + state.token },
        body: JSON.stringify(body),
      }, ACTION_TIMEOUT_MS);
      const raw = await resp.text();
      let ans = null;
      try { ans = JSON.parse(raw); } catch (e) { ans = null; }
      if (resp.ok) {
        showResult('ok', title + ': ' + ((ans && ans.message) || 'done.'));
      } else {
        let msg = (ans && (ans.error || ans.message)) || raw.trim().slice(0, 300) || resp.statusText;
        if (resp.status === 401 || resp.status === 403) {
          saveToken('');
          msg += ' — the manager token was refused; unlock actions again with the right token.';
        }
        showResult('error', title + ' failed (HTTP ' + resp.status + '): ' + msg);
      }
    } catch (e) {
      showResult('error', title + ' failed: ' + errText(e));
    } finally {
      state.busy = false;
      updateButtons();
    }
  }

  function wireControls() {
    const unlock = () => {
      const input = $('token');
      const tok = input.value.trim();
      input.value = '';
      if (!tok) { input.focus(); return; }
      saveToken(tok);
    };
    $('unlock').addEventListener('click', unlock);
    $('token').addEventListener('keydown', (e) => { if (e.key === 'Enter') unlock(); });
    $('lock').addEventListener('click', () => saveToken(''));
    $('confirm-cancel').addEventListener('click', closeConfirm);
    $('confirm-ok').addEventListener('click', runConfirmed);
    // The close event comes a task later: by then the dialog may be open again for
    // another action, which keeps its pending action.
    $('confirm').addEventListener('close', () => { if (!$('confirm').open) state.pending = null; });
    $('confirm-input').addEventListener('input', () => {
      const p = state.pending;
      $('confirm-ok').disabled = !p || $('confirm-input').value.trim() !== p.target;
    });
    $('confirm-input').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !$('confirm-ok').disabled) runConfirmed();
    });
    $('action-result-close').addEventListener('click', () => { $('action-result').hidden = true; });
    $('update-file').addEventListener('change', updateButtons);
    for (const id of ['update-dry', 'update-go', 'update-rollback']) {
      const b = $(id);
      b.addEventListener('click', () => askConfirm(b.dataset.action, b.dataset.target));
    }
    $('events-problems').addEventListener('change', (e) => {
      document.body.classList.toggle('problems-only', e.target.checked);
    });
    $('events-cluster').addEventListener('change', (e) => {
      const all = e.target.checked;
      $('events-all').hidden = !all;
      $('events').hidden = all;
      $('events-empty').hidden = all || $('events').children.length > 0;
      if (all) pollClusterEvents();
      else if (state.view) { $('events-source').dataset.key = ''; renderEventSource(state.view); }
    });
    if (window.ResizeObserver) new ResizeObserver(() => drawLinks()).observe($('topology'));
    else window.addEventListener('resize', drawLinks);
  }

  // The last hour's charts: GET /ftvs/v1/history, this member's own samples.
  function fmtChart(v, unit) {
    if (unit === 'seconds') return v >= 1 ? v.toFixed(2) + ' s' : (v * 1000).toFixed(v >= 0.01 ? 0 : 1) + ' ms';
    if (unit === 'bytes') return fmtBytes(v);
    if (unit === 'rate') return fmtRate(v);
    return fmtInt(Math.round(v));
  }

  function drawChart(fig, samples) {
    const key = fig.dataset.key, unit = fig.dataset.unit;
    const svg = fig.querySelector('svg');
    const values = samples.map((s) => s[key] || 0);
    svg.replaceChildren();
    const label = fig.querySelector('figcaption').textContent;
    if (values.length < 2) {
      svg.setAttribute('aria-label', label + ': not enough samples yet');
      setText(fig.querySelector('.chart-value'), 'collecting…');
      return;
    }
    const max = Math.max(...values), top = max > 0 ? max * 1.1 : 1;
    const pts = values.map((v, i) => ((i / (values.length - 1)) * 300).toFixed(1) + ',' + (68 - (v / top) * 64).toFixed(1));
    svg.append(svgEl('polyline', { class: 'chart-line', points: pts.join(' ') }));
    const now = values[values.length - 1];
    const minutes = Math.round((samples.length * HISTORY_INTERVAL_MS) / 60000);
    svg.setAttribute('aria-label', `${label} over the last ${minutes || 1} min: now ${fmtChart(now, unit)}, highest ${fmtChart(max, unit)}`);
    setText(fig.querySelector('.chart-value'), `now ${fmtChart(now, unit)} · highest ${fmtChart(max, unit)}`);
  }

  async function pollHistory() {
    try {
      const r = await fetchWithTimeout('/ftvs/v1/history', { headers: readHeaders({}) }, VIEW_TIMEOUT_MS);
      if (r.ok) {
        const h = await r.json();
        document.querySelectorAll('#history .chart').forEach((fig) => drawChart(fig, h.samples || []));
      }
    } catch (e) {
      // The view's poll says when the member is out of reach.
    }
    setTimeout(pollHistory, HISTORY_INTERVAL_MS);
  }

  function start() {
    loadToken();
    saveToken(state.token);
    wireControls();
    pollView();
    pollHistory();
    followEvents();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
