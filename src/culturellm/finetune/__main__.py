"""`python -m culturellm.finetune ...`: the finetune command (runs under accelerate launch / torchrun)."""

from culturellm.finetune.cli import main

if __name__ == "__main__":
    main()
