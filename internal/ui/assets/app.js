// Polls the cluster view and shows the virtual server's mode.
async function refresh() {
  try {
    const r = await fetch('/ftvs/cluster?hash=0');
    const v = await r.json();
    document.getElementById('mode').textContent = v.mode;
  } catch (e) {
    document.getElementById('mode').textContent = 'unreachable: ' + e;
  }
}
refresh();
setInterval(refresh, 1000);
