"""The artifacts bucket (models, datasets, notebook workspaces, build uploads) and who may reach which prefix."""
