// One self-contained SVG picture of a mission run: the contact timeline (one row per
// satellite, one bar per contact window, coloured by station, uploads marked) above the
// test-accuracy curves of the compressed and the dense run.

export interface TimelineWindow {
  satellite: string
  station: string
  startMs: number
  endMs: number
  used: boolean
  relayed?: boolean
}

export interface Curve {
  label: string
  colour: string
  accuracy: number[]
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf']

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

export function missionSvg(opts: {
  title: string
  startMs: number
  endMs: number
  satellites: string[]
  windows: TimelineWindow[]
  roundEndsMs: number[]
  curves: Curve[]
}): string {
  const W = 1200
  // Room for the longest satellite name at ~7 px per character.
  const left = Math.max(150, 16 + 7 * Math.max(...opts.satellites.map((s) => s.length)))
  const right = 30
  const rowH = 18
  const top = 50
  const timelineH = opts.satellites.length * rowH
  const chartTop = top + timelineH + 70
  const chartH = 260
  const H = chartTop + chartH + 60
  const plotW = W - left - right
  const x = (ms: number) => left + ((ms - opts.startMs) / (opts.endMs - opts.startMs)) * plotW
  const stations = [...new Set(opts.windows.map((w) => w.station))].sort()
  const colour = new Map(stations.map((s, i) => [s, PALETTE[i % PALETTE.length]]))
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  out.push(`<text x="${left}" y="24" font-size="16" font-weight="bold">${esc(opts.title)}</text>`)
  // Hour grid.
  const hours = (opts.endMs - opts.startMs) / 3_600_000
  const every = hours > 48 ? 12 : 6
  for (let h = 0; h <= hours; h += every) {
    const gx = x(opts.startMs + h * 3_600_000)
    out.push(`<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${top + timelineH}" stroke="#ddd"/>`)
    out.push(`<text x="${gx}" y="${top + timelineH + 14}" text-anchor="middle" fill="#555">+${h} h</text>`)
  }
  opts.satellites.forEach((s, i) => {
    const y = top + i * rowH
    out.push(`<text x="${left - 8}" y="${y + rowH * 0.7}" text-anchor="end">${esc(s)}</text>`)
    out.push(`<line x1="${left}" y1="${y + rowH / 2}" x2="${W - right}" y2="${y + rowH / 2}" stroke="#f0f0f0"/>`)
  })
  const row = new Map(opts.satellites.map((s, i) => [s, i]))
  for (const w of opts.windows) {
    const i = row.get(w.satellite)
    if (i === undefined) continue
    const y = top + i * rowH + 3
    const x0 = x(w.startMs)
    const width = Math.max(1.5, x(w.endMs) - x0)
    out.push(
      `<rect x="${x0.toFixed(1)}" y="${y}" width="${width.toFixed(1)}" height="${rowH - 6}" fill="${colour.get(w.station)}"` +
        ` opacity="${w.used ? 1 : 0.35}"><title>${esc(`${w.satellite} – ${w.station}: ${new Date(w.startMs).toISOString()} (${((w.endMs - w.startMs) / 1000).toFixed(0)} s)${w.used ? ', used' : ''}`)}</title></rect>`,
    )
  }
  // Legend.
  let lx = left
  const ly = top + timelineH + 34
  for (const s of stations) {
    out.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${colour.get(s)}"/>`)
    out.push(`<text x="${lx + 16}" y="${ly}">${esc(s)}</text>`)
    lx += 24 + s.length * 7
  }
  out.push(`<text x="${lx + 10}" y="${ly}" fill="#555">(solid: window used for a sync; faint: unused)</text>`)
  // Accuracy chart.
  const rounds = Math.max(...opts.curves.map((c) => c.accuracy.length))
  const cx = (r: number) => left + (rounds <= 1 ? 0 : (r / (rounds - 1)) * plotW)
  const cy = (a: number) => chartTop + chartH - a * chartH
  out.push(`<text x="${left}" y="${chartTop - 12}" font-weight="bold">Test accuracy after each round</text>`)
  for (let a = 0; a <= 1.0001; a += 0.2) {
    out.push(`<line x1="${left}" y1="${cy(a)}" x2="${W - right}" y2="${cy(a)}" stroke="#eee"/>`)
    out.push(`<text x="${left - 8}" y="${cy(a) + 4}" text-anchor="end" fill="#555">${(a * 100).toFixed(0)}%</text>`)
  }
  for (let r = 0; r < rounds; r += Math.max(1, Math.round(rounds / 12))) {
    out.push(`<text x="${cx(r)}" y="${chartTop + chartH + 16}" text-anchor="middle" fill="#555">${r + 1}</text>`)
  }
  out.push(`<text x="${left + plotW / 2}" y="${chartTop + chartH + 34}" text-anchor="middle" fill="#555">round</text>`)
  opts.curves.forEach((c, k) => {
    const pts = c.accuracy.map((a, r) => `${cx(r).toFixed(1)},${cy(a).toFixed(1)}`).join(' ')
    out.push(`<polyline points="${pts}" fill="none" stroke="${c.colour}" stroke-width="2"/>`)
    out.push(`<rect x="${W - right - 330}" y="${chartTop + chartH - 50 + k * 18}" width="12" height="3" fill="${c.colour}"/>`)
    out.push(`<text x="${W - right - 312}" y="${chartTop + chartH - 45 + k * 18}">${esc(c.label)}</text>`)
  })
  out.push('</svg>')
  return out.join('\n')
}
