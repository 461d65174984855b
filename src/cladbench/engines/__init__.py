"""The Python engines: PyTorch (eager), torch.compile and JAX trainers, their shared loop and run record."""
