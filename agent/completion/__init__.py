"""hone.agent.completion: inline completion (policy, prompt, post-processing, engine)."""
