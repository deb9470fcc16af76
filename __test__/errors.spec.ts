// Errors raised by napi-rs itself (a value of the wrong JavaScript type, a missing options
// object) carry the same stable code as ours, ERR_INVALID_ARG, with the call named; our own
// codes pass through; classes keep their identity.
import test from 'ava'
import * as d from '../index.js'

const code = (f: () => unknown) => {
  try {
    f()
  } catch (e) {
    return [(e as NodeJS.ErrnoException).code, (e as Error).message]
  }
  return ['no error', '']
}

test('wrong types and missing options are ERR_INVALID_ARG naming the call', (t) => {
  const cases: [string, () => unknown, RegExp][] = [
    ['missing options', () => new (d.FederatedClient as any)(), /new FederatedClient/],
    ['string for a number', () => new d.CompressionConfig({ sparsity: '0.5' as any }), /sparsity/],
    ['number for an id', () => new d.SpaceMesh().findRoute(1 as any, 2 as any), /SpaceMesh\.findRoute/],
    ['unknown enum value', () => new d.NodeConfig({ nodeId: 'a', nodeType: 'x' as any, memoryGb: 1, computeTflops: 1 }), /nodeType/],
    ['null options to a method', () => new d.TransferPlanner().enqueue(null as any), /TransferPlanner\.enqueue/],
    ['plain object for a class', () => new d.SpaceMesh().addNode({ nodeId: 'x' } as any), /SpaceMesh\.addNode/],
    ['string for a number (metrics)', () => new d.TrainingMetrics().recordStep('1' as any), /recordStep/],
  ]
  for (const [what, f, where] of cases) {
    const [c, m] = code(f)
    t.is(c, 'ERR_INVALID_ARG', what)
    t.regex(m as string, where, what)
  }
})

test('our own codes pass through; async rejections are mapped too; identity is kept', async (t) => {
  t.is(code(() => d.CompressedGradient.fromBuffer(new Uint8Array(3)))[0], 'ERR_CORRUPT_DATA')
  t.is(code(() => new d.SpaceMesh().findRoute('a', 'b'))[0], 'ERR_UNKNOWN_NODE')
  const agg = new d.GradientAggregator()
  const e = await t.throwsAsync<NodeJS.ErrnoException>(() => agg.aggregateAsync([]))
  t.is(e!.code, 'ERR_NO_CLIENTS')
  const mesh = new d.SpaceMesh()
  t.true(mesh instanceof d.SpaceMesh)
  t.true(d.GroundStation.svalbard() instanceof d.GroundStation)
  t.is(d.CompressionType.TOP_K as string, 'top_k')
  t.is(new d.GradientAggregator().constructor, d.GradientAggregator)
  t.is(d.SpaceMesh.prototype.constructor, d.SpaceMesh)
})

test('exported classes can be subclassed', (t) => {
  class Labelled extends d.GradientAggregator {
    label() {
      return `aggregator (${this.strategy})`
    }
  }
  const agg = new Labelled({ strategy: d.AggregationStrategy.MEDIAN })
  t.true(agg instanceof Labelled)
  t.true(agg instanceof d.GradientAggregator)
  t.is(agg.constructor, Labelled)
  t.is(agg.label(), 'aggregator (median)')
  // The native methods work on the subclass instance: the median of 1, 3 and 100 is 3.
  t.deepEqual(Array.from(agg.aggregate([Float32Array.of(1), Float32Array.of(3), Float32Array.of(100)])), [3])
  // The subclass constructor's bad input keeps its code.
  t.is(code(() => new Labelled({ strategy: 'bogus' as any }))[0], 'ERR_INVALID_ARG')
  // A class without a public constructor says so, with a code, subclassed or not.
  const [c1, m1] = code(() => new (d.CompressedGradient as any)())
  t.is(c1, 'ERR_INVALID_ARG')
  t.regex(m1 as string, /CompressedGradient has no public constructor/)
  class Sub extends (d.CompressedGradient as any) {}
  t.is(code(() => new Sub())[0], 'ERR_INVALID_ARG')
})

test('magnitudes that would overflow a total are refused, not turned into Infinity or NaN', (t) => {
  const m = new d.TrainingMetrics()
  t.is(code(() => m.recordStep(1e308))[0], 'ERR_INVALID_ARG')
  t.is(code(() => m.recordCompression(5, 0))[0], 'ERR_INVALID_ARG')
  t.is(m.computeEfficiency, 0)
  const layers = [
    { name: 'a', paramsMb: 1, flops: 1.7e308 },
    { name: 'b', paramsMb: 1, flops: 1.7e308 },
  ]
  const [c, msg] = code(() => new d.ModelProfile({ layers }))
  t.is(c, 'ERR_INVALID_ARG')
  t.regex(msg as string, /layers\[0\]\.flops must be at most 1e30/)
  t.is(code(() => new d.NodeConfig({ nodeId: 'n', nodeType: d.NodeType.GROUND, memoryGb: 1, computeTflops: 1e-300 }))[0], 'ERR_INVALID_ARG')
})

test('…Async methods never throw: bad input rejects the returned promise', async (t) => {
  const profile = d.ModelProfile.createTransformer({ numLayers: 1 })
  const calls: [string, () => Promise<unknown>, string][] = [
    ['optimizeAsync, no nodes', () => new d.PartitionOptimizer().optimizeAsync(profile, []), 'ERR_INVALID_ARG'],
    ['optimizeAsync, wrong type', () => new d.PartitionOptimizer().optimizeAsync(null as any, []), 'ERR_INVALID_ARG'],
    ['aggregateAsync, no inputs', () => new d.GradientAggregator().aggregateAsync([]), 'ERR_NO_CLIENTS'],
    ['routesFromAsync, unknown node', () => new d.SpaceMesh().routesFromAsync('nowhere'), 'ERR_UNKNOWN_NODE'],
    ['getSyncWindowsAsync, bad options', () => new d.SyncScheduler().getSyncWindowsAsync(42 as any), 'ERR_INVALID_ARG'],
  ]
  for (const [what, call, c] of calls) {
    let promise: Promise<unknown> | undefined
    t.notThrows(() => {
      promise = call()
    }, what)
    const e = await t.throwsAsync<NodeJS.ErrnoException>(promise!, undefined, what)
    t.is(e!.code, c, what)
  }
})

test('an options argument that is not an object, and a class called without new, are ERR_INVALID_ARG', (t) => {
  const profile = d.ModelProfile.createTransformer({ numLayers: 1 })
  const node = { nodeId: 'g', nodeType: d.NodeType.GROUND, memoryGb: 10, computeTflops: 1 }
  const cases: [string, () => unknown, RegExp][] = [
    ['strategy string (the peer style)', () => new d.PartitionOptimizer().optimize(profile, [node], 'throughput' as any), /optimize: options must be an object, got string/],
    ['constructor options', () => new d.PartitionOptimizer('x' as any), /new PartitionOptimizer: options/],
    ['number options', () => new d.LatencyEstimator(5 as any), /new LatencyEstimator/],
    ['mesh route options', () => new d.SpaceMesh().findRoute('a', 'b', 'latency' as any), /findRoute: options/],
    ['factory options', () => d.ModelProfile.createTransformer('gpt' as any), /createTransformer/],
    ['factory field type', () => d.ModelProfile.createTransformer({ numLayers: '3' as any }), /numLayers/],
    ['class without new', () => (d.NodeConfig as any)(node), /NodeConfig is a class/],
    ['class via call', () => (d.ModelProfile as any).call({}, { layers: [] }), /ModelProfile is a class/],
  ]
  for (const [what, f, where] of cases) {
    const [c, m] = code(f)
    t.is(c, 'ERR_INVALID_ARG', what)
    t.regex(m as string, where, what)
  }
  // null and undefined options still mean the defaults.
  t.truthy(new d.PartitionOptimizer().optimize(profile, [node], undefined))
  t.truthy(new d.PartitionOptimizer(null as any).optimize(profile, [node], null as any))
})

// Enum-typed options also take the enums' string values, as the peer's API uses them; `tsc`
// type-checks this file, so a narrower declaration would fail the test run.
test('enum options accept their string values, in types and at run time', (t) => {
  const profile = new d.ModelProfile({ layers: [{ name: 'a', paramsMb: 10, flops: 1e9 }] })
  const nodes: d.NodeConfigOptions[] = [
    { nodeId: 'sat', nodeType: 'satellite', memoryGb: 8, computeTflops: 2 },
    { nodeId: 'gs', nodeType: 'ground', memoryGb: 8, computeTflops: 20 },
  ]
  const opt = new d.PartitionOptimizer({ outputNodeType: 'ground', links: [{ from: 'satellite', to: 'ground', bandwidthMbps: 100, latencyMs: 2 }] })
  const byString = opt.optimize(profile, nodes, { objective: 'throughput' })
  const byEnum = opt.optimize(profile, nodes, { objective: d.PartitionObjective.THROUGHPUT })
  t.deepEqual(byString, byEnum)
  t.is(byString.objective, d.PartitionObjective.THROUGHPUT)
  t.is(new d.GradientAggregator({ strategy: 'median' }).strategy, d.AggregationStrategy.MEDIAN)
  t.is(new d.CompressionConfig({ compressionType: 'random_k' }).compressionType, d.CompressionType.RANDOM_K)
  const planner = new d.TransferPlanner()
  planner.enqueue({ transferId: 'x', satelliteId: 's', sizeMb: 1, priority: 'critical', direction: 'uplink' })
  const q = planner.peek()!
  t.is(q.priority, d.TransferPriority.CRITICAL)
  t.is(q.direction, d.TransferDirection.UPLINK)
  // A value outside the enum is still refused with a coded error.
  t.is((t.throws(() => new d.GradientAggregator({ strategy: 'mean' as any })) as any)?.code, 'ERR_INVALID_ARG')
})
