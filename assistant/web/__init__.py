"""The approval queue web pages: server-rendered, autoescaped, one small script of our own."""
