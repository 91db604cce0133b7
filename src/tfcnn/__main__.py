"""``python -m tfcnn``: the command line."""

from tfcnn.apps.cli import main

if __name__ == "__main__":
    main()
