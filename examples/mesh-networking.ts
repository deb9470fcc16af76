// The README's mesh-networking example, as written there except that `Position` comes from
// this package (the `@rotastellar/sdk` Position works too at run time; its TypeScript
// constructor is positional, so the object form does not type-check against it).
// Run: npx tsx examples/mesh-networking.ts
// ---- README example below ----
import { SpaceMesh, MeshNode } from '@rotastellar/distributed';
import { Position } from '@rotastellar/distributed';

// Create mesh network
const mesh = new SpaceMesh();

// Add nodes
mesh.addNode(new MeshNode({ nodeId: 'sat-001', position: new Position({ latitude: 45.0, longitude: -122.0, altitudeKm: 550.0 }) }));
mesh.addNode(new MeshNode({ nodeId: 'sat-002', position: new Position({ latitude: 46.0, longitude: -120.0, altitudeKm: 550.0 }) }));
mesh.addNode(new MeshNode({ nodeId: 'sat-003', position: new Position({ latitude: 44.0, longitude: -118.0, altitudeKm: 550.0 }) }));

// Add inter-satellite links
mesh.addLink('sat-001', 'sat-002', { bandwidthMbps: 1000.0, latencyMs: 2.0 });
mesh.addLink('sat-002', 'sat-003', { bandwidthMbps: 1000.0, latencyMs: 2.5 });

// Find optimal route
const route = mesh.findRoute('sat-001', 'sat-003');
console.log(`Route: ${route.hops.join(' -> ')}`);
console.log(`Total latency: ${route.totalLatencyMs.toFixed(1)} ms`);
// ---- README example above ----
