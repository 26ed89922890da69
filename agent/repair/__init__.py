"""hone.agent.repair: the test-driven repair loop (to come)."""
