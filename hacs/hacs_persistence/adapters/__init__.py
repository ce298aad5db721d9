"""The adapters the guide names, built on the layers below."""
