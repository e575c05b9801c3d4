"""Developer tools, never packaged nor copied into the image: the local stack, the sandbox."""
