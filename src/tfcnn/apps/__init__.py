"""The entry points over the library: the command line and the web app."""
