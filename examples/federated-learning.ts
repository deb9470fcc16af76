// The README's federated-learning example, as written there. The README leaves `model`,
// `grad1`, `grad2` and `grad3` to the reader; the lines above the marker supply them.
// Run: npx tsx examples/federated-learning.ts
const n = 1_000_000
function gradient(seed: number): Float32Array {
  let s = seed >>> 0
  const g = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    g[i] = (s / 4294967296 - 0.5) * 0.02
  }
  return g
}
const model = { getGradients: (): Float32Array => gradient(1) }
const grad1 = gradient(2)
const grad2 = gradient(3)
const grad3 = gradient(4)
// ---- README example below ----
import {
  FederatedClient,
  GradientAggregator,
  AggregationStrategy,
  CompressionConfig,
  CompressionType
} from '@rotastellar/distributed';

// Configure gradient compression for limited bandwidth
const compression = new CompressionConfig({
  compressionType: CompressionType.TOP_K,
  sparsity: 0.99,  // Keep top 1% of gradients
  errorFeedback: true
});

// Create federated client
const client = new FederatedClient({
  nodeId: 'sat-001',
  compression
});

// Compress gradients before transmission
const gradients = model.getGradients();
const compressed = client.compress(gradients);
console.log(`Compression ratio: ${compressed.compressionRatio.toFixed(1)}x`);

// Server-side aggregation
const aggregator = new GradientAggregator({ strategy: AggregationStrategy.FEDAVG });
const aggregated = aggregator.aggregate([grad1, grad2, grad3], { weights: [0.4, 0.3, 0.3] });
// ---- README example above ----
console.log(`Aggregated ${aggregated.length} parameters; first: ${aggregated[0].toFixed(6)}`)
