"""Tools for checking implementations against refnn (needs the ``testing`` extra: hypothesis).

``refnn.testing.strategies`` holds the hypothesis strategies refnn's own tests use: layer
shapes and geometries that shrink to the smallest failing layer, and arrays whose contents
shrink to minimal values.
"""
