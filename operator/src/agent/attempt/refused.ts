// The attempt cannot run here as assigned: reported to the hub as a Failed attempt with `reason`
// (PascalCase) and the message, before any pod exists.
export class AttemptRefused extends Error {
  override name = 'AttemptRefused';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}
