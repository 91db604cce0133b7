"""Reading and writing files.

:mod:`~tfcnn.io.textio` (the one text decoder), :mod:`~tfcnn.io.expression`,
:mod:`~tfcnn.io.interactions`, :mod:`~tfcnn.io.ids` and :mod:`~tfcnn.io.idmap` (gene IDs),
:mod:`~tfcnn.io.idlists` (ID lists typed or in files), :mod:`~tfcnn.io.datasets`
(bundled data), :mod:`~tfcnn.io.fetch` (downloads), :mod:`~tfcnn.io.affy` (CEL and CDF
files), :mod:`~tfcnn.io.rma` (RMA), :mod:`~tfcnn.io.geo` (GEO series matrices),
:mod:`~tfcnn.io.manifest` (versioned folders) and :mod:`~tfcnn.io.atomic` (outputs
written whole or not at all).
"""
