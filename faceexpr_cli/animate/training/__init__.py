"""`fx train animator`: First Order Motion Model training (data, random TPS, losses, runner)."""
