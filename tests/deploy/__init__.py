"""Deployment: manifests, image, dashboard, alert rules and the server options they rely on."""
