"""distbench's machinery: runs a workload under a strategy adapter with a training loop
and records what happened."""
