/** An error the CLI prints as one line, with the fix, and turns into a meaningful exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.Failure,
  ) {
    super(message);
  }
}

export const ExitCode = {
  Ok: 0,
  Failure: 1,
  Usage: 2,
  NotFound: 3,
  Unreachable: 4,
  InsufficientFunds: 5,
} as const;
