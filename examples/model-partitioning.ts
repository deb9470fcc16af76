// The README's model-partitioning example, as written there.
// Run: npx tsx examples/model-partitioning.ts
// ---- README example below ----
import {
  ModelProfile,
  PartitionOptimizer,
  NodeConfig,
  NodeType
} from '@rotastellar/distributed';

// Profile your model
const profile = new ModelProfile({
  layers: [
    { name: 'embedding', paramsMb: 100, flops: 1e9 },
    { name: 'transformer_1', paramsMb: 200, flops: 5e9 },
    { name: 'transformer_2', paramsMb: 200, flops: 5e9 },
    { name: 'output', paramsMb: 50, flops: 1e8 }
  ]
});

// Define available nodes
const nodes = [
  new NodeConfig({ nodeId: 'sat-001', nodeType: NodeType.SATELLITE, memoryGb: 8, computeTflops: 2.0 }),
  new NodeConfig({ nodeId: 'sat-002', nodeType: NodeType.SATELLITE, memoryGb: 8, computeTflops: 2.0 }),
  new NodeConfig({ nodeId: 'ground-001', nodeType: NodeType.GROUND, memoryGb: 32, computeTflops: 10.0 })
];

// Optimize partitioning
const optimizer = new PartitionOptimizer();
const plan = optimizer.optimize(profile, nodes);
console.log(`Partition plan: ${JSON.stringify(plan.assignments)}`);
console.log(`Estimated latency: ${plan.estimatedLatencyMs.toFixed(1)} ms`);
// ---- README example above ----
