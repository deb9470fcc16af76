// The README's sync-scheduling example, as written there except that `Position` comes from
// this package (the `@rotastellar/sdk` Position works too at run time; its TypeScript
// constructor is positional, so the object form does not type-check against it).
// Run: npx tsx examples/sync-scheduling.ts
// ---- README example below ----
import { SyncScheduler, GroundStation } from '@rotastellar/distributed';
import { Position } from '@rotastellar/distributed';

// Define ground stations
const stations = [
  new GroundStation({
    name: 'KSC',
    position: new Position({ latitude: 28.5729, longitude: -80.6490, altitudeKm: 0.0 }),
    uplinkMbps: 100.0,
    downlinkMbps: 200.0
  }),
  new GroundStation({
    name: 'Svalbard',
    position: new Position({ latitude: 78.2297, longitude: 15.3975, altitudeKm: 0.0 }),
    uplinkMbps: 150.0,
    downlinkMbps: 300.0
  })
];

// Create scheduler
const scheduler = new SyncScheduler({ groundStations: stations });

// Get optimal sync windows
const windows = scheduler.getSyncWindows({
  satelliteId: 'sat-001',
  durationHours: 24
});

for (const window of windows) {
  console.log(`Station: ${window.station.name}`);
  console.log(`Start: ${window.startTime.toISOString()}, Duration: ${window.durationSeconds}s`);
  console.log(`Data capacity: ${window.dataCapacityMb.toFixed(1)} MB`);
}
// ---- README example above ----
