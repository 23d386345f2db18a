"""The world the engine is tested and tuned against: called parties, agents,
scenarios, the simulation runner and its reports."""
