"""`fx demo`: every feature of fx run end to end on embedded data, with an HTML report."""
