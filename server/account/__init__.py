"""Log in, log out, change one's password: the pages of one's own account (auth is the rules below them)."""
