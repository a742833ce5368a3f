"""Output dataset of an embed job: the folder, its part files, and the writer thread."""
