"""The picture's geometry for any topology: a plain graph in, boxes and edge routes out.

Pure code (no Textual, no I/O): :mod:`graph` holds the input, :mod:`from_scenario` builds it from
a scenario, :mod:`columns` orders the stations (igraph's Sugiyama layering), :mod:`place` puts
them on a character grid of a given width.
"""
