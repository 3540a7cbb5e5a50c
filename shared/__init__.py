"""Plain data, rules and MongoDB access shared by the API and the workers."""
