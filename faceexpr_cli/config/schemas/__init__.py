"""Recipe schemas, one module per kind; every module here registers into ``recipes.SCHEMAS`` on import."""
