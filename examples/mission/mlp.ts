// A small multilayer perceptron (784 → hidden → 10, ReLU, softmax cross-entropy) whose
// parameters live in one Float32Array, so a model update is one flat gradient vector.
import { PIXELS, type Dataset } from './mnist.js'

/** A dataset's pixels as compressed rows: MNIST digits are ~80 % zero, so the first layer
 * only needs to touch the ink. Built once per dataset. */
interface SparseRows {
  start: Uint32Array
  index: Uint16Array
  value: Float32Array
}
const sparseCache = new WeakMap<Dataset, SparseRows>()
function sparseRows(data: Dataset): SparseRows {
  let r = sparseCache.get(data)
  if (r) return r
  let nnz = 0
  for (let k = 0; k < data.x.length; k++) if (data.x[k] !== 0) nnz++
  r = { start: new Uint32Array(data.n + 1), index: new Uint16Array(nnz), value: new Float32Array(nnz) }
  let at = 0
  for (let s = 0; s < data.n; s++) {
    r.start[s] = at
    for (let i = 0; i < PIXELS; i++) {
      const v = data.x[s * PIXELS + i]
      if (v !== 0) {
        r.index[at] = i
        r.value[at++] = v
      }
    }
  }
  r.start[data.n] = at
  sparseCache.set(data, r)
  return r
}

export class Mlp {
  readonly hidden: number
  readonly size: number
  params: Float32Array

  constructor(hidden: number, random: () => number) {
    this.hidden = hidden
    this.size = PIXELS * hidden + hidden + hidden * 10 + 10
    this.params = new Float32Array(this.size)
    // He initialisation for the ReLU layer, Xavier for the output layer.
    const w1 = Math.sqrt(2 / PIXELS)
    const w2 = Math.sqrt(1 / hidden)
    const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
    for (let i = 0; i < PIXELS * hidden; i++) this.params[i] = normal() * w1
    const o2 = PIXELS * hidden + hidden
    for (let i = 0; i < hidden * 10; i++) this.params[o2 + i] = normal() * w2
  }

  clone(): Mlp {
    const m = Object.create(Mlp.prototype) as Mlp
    Object.assign(m, { hidden: this.hidden, size: this.size, params: this.params.slice() })
    return m
  }

  /** Forward pass of one sample; fills `h` (hidden activations) and `p` (class probabilities). */
  private forward(x: SparseRows, sample: number, h: Float32Array, p: Float32Array): void {
    const H = this.hidden
    const P = this.params
    const b1 = PIXELS * H
    const w2 = b1 + H
    const b2 = w2 + H * 10
    const a = x.start[sample]
    const b = x.start[sample + 1]
    for (let j = 0; j < H; j++) {
      let s = P[b1 + j]
      const row = j * PIXELS
      for (let k = a; k < b; k++) s += P[row + x.index[k]] * x.value[k]
      h[j] = s > 0 ? s : 0
    }
    let max = -Infinity
    for (let c = 0; c < 10; c++) {
      let s = P[b2 + c]
      for (let j = 0; j < H; j++) s += P[w2 + c * H + j] * h[j]
      p[c] = s
      if (s > max) max = s
    }
    let z = 0
    for (let c = 0; c < 10; c++) z += p[c] = Math.exp(p[c] - max)
    for (let c = 0; c < 10; c++) p[c] /= z
  }

  /** Minibatch SGD over `data` for `epochs` epochs, in a seeded order. */
  train(data: Dataset, epochs: number, batch: number, lr: number, random: () => number): void {
    const H = this.hidden
    const P = this.params
    const b1 = PIXELS * H
    const w2 = b1 + H
    const b2 = w2 + H * 10
    const g = new Float32Array(this.size)
    const h = new Float32Array(H)
    const p = new Float32Array(10)
    const dh = new Float32Array(H)
    const x = sparseRows(data)
    const order = Array.from({ length: data.n }, (_, i) => i)
    for (let e = 0; e < epochs; e++) {
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1))
        ;[order[i], order[j]] = [order[j], order[i]]
      }
      for (let start = 0; start < order.length; start += batch) {
        g.fill(0)
        const end = Math.min(order.length, start + batch)
        for (let k = start; k < end; k++) {
          const s = order[k]
          this.forward(x, s, h, p)
          p[data.y[s]] -= 1 // dLoss/dlogits
          dh.fill(0)
          for (let c = 0; c < 10; c++) {
            const d = p[c]
            g[b2 + c] += d
            const row = w2 + c * H
            for (let j = 0; j < H; j++) {
              g[row + j] += d * h[j]
              dh[j] += d * P[row + j]
            }
          }
          for (let j = 0; j < H; j++) {
            if (h[j] <= 0) continue
            const d = dh[j]
            g[b1 + j] += d
            const row = j * PIXELS
            for (let k = x.start[s]; k < x.start[s + 1]; k++) g[row + x.index[k]] += d * x.value[k]
          }
        }
        const step = lr / (end - start)
        for (let i = 0; i < this.size; i++) P[i] -= step * g[i]
      }
    }
  }

  /** Fraction of `data` classified correctly. */
  accuracy(data: Dataset): number {
    const h = new Float32Array(this.hidden)
    const p = new Float32Array(10)
    const x = sparseRows(data)
    let right = 0
    for (let s = 0; s < data.n; s++) {
      this.forward(x, s, h, p)
      let best = 0
      for (let c = 1; c < 10; c++) if (p[c] > p[best]) best = c
      if (best === data.y[s]) right++
    }
    return right / data.n
  }
}
