"""Privacy requests: a person asks to see, or to erase, what the brand holds about them."""
