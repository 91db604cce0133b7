"""The tfcnn web app (Shiny for Python); start it with `tfcnn serve`."""
