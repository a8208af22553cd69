"""The home page per role and a district at a glance: they read every part, so they sit above all of them."""
