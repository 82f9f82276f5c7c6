"""Research tools with known truth: simulators and the simulation study."""
