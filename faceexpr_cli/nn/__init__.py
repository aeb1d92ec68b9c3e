"""Pure torch nn.Modules: no file, network, media or CLI imports (a test holds this)."""
