"""BLE beacons: frame parsing, proximity, the bleak scanner and recorded replays."""
