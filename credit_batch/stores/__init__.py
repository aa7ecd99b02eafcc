"""Where data lives: databases by URL, the warehouse, the lake, the registry, the results."""
