"""casebook's service layer: settings, the write-side application, the CLI."""
