"""The online shop that runs inside every sandbox: one module per service."""
