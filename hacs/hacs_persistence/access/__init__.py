"""Who may do what: the access gate, the audit context, token revocations."""
