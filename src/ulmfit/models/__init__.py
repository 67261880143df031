"""Model families of ulmfit, one folder each (each folder is also uploadable as Hub remote code)."""
