"""What models exist: Family records, presets (data), config.json reading, architecture -> formula set."""
